// First: the SDK's codec needs a global Buffer before its modules run (see polyfill.ts).
import './polyfill.js'
import { render } from 'preact'
import { App } from './app.js'
import { ChatModel } from './chat.js'
import './style.css'

const model = new ChatModel()
// For debugging in the console, and for the browser test to read state it cannot see on screen.
;(window as { switchboard?: ChatModel }).switchboard = model
render(<App model={model} />, document.getElementById('app')!)
