/**
 * Makes web/public/favicon.ico from web/public/favicon.svg: Chromium draws the SVG at 16, 32 and 48 pixels
 * and the PNGs are packed into one ICO (an ICO may hold PNG images as they are). Run it after changing the
 * SVG and commit both: node --import tsx scripts/make-favicon.ts
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { chromium } from 'playwright-core'

const PUBLIC = resolve(import.meta.dirname, '../web/public')
const svg = readFileSync(join(PUBLIC, 'favicon.svg'), 'utf8')
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
})
const pngs: { size: number; png: Buffer }[] = []
try {
  for (const size of [16, 32, 48]) {
    const page = await browser.newPage({ viewport: { width: size, height: size } })
    await page.setContent(
      `<html><body style="margin:0;background:transparent"><img src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}" width="${size}" height="${size}" style="display:block"></body></html>`,
    )
    pngs.push({ size, png: await page.screenshot({ omitBackground: true, type: 'png' }) })
    await page.close()
  }
} finally {
  await browser.close()
}
// ICONDIR (6 bytes), one ICONDIRENTRY (16 bytes) per image, then the images.
const head = Buffer.alloc(6 + 16 * pngs.length)
head.writeUInt16LE(0, 0)
head.writeUInt16LE(1, 2)
head.writeUInt16LE(pngs.length, 4)
let offset = head.length
pngs.forEach(({ size, png }, i) => {
  const e = 6 + 16 * i
  head.writeUInt8(size % 256, e)
  head.writeUInt8(size % 256, e + 1)
  head.writeUInt8(0, e + 2)
  head.writeUInt8(0, e + 3)
  head.writeUInt16LE(1, e + 4)
  head.writeUInt16LE(32, e + 6)
  head.writeUInt32LE(png.length, e + 8)
  head.writeUInt32LE(offset, e + 12)
  offset += png.length
})
writeFileSync(join(PUBLIC, 'favicon.ico'), Buffer.concat([head, ...pngs.map((p) => p.png)]))
console.log(`web/public/favicon.ico: ${pngs.map((p) => `${p.size}px`).join(', ')}, ${offset} bytes`)
