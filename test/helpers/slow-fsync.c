/*
 * A disk whose flush is slow, for tests: LD_PRELOAD this into a process and every fsync/fdatasync first sleeps
 * SLOW_FSYNC_MS milliseconds (default 10), as a cheap cloud volume or a busy disk makes it. Built by the test that
 * uses it (cc -shared -fPIC -o slow-fsync.so slow-fsync.c -ldl).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void pause_ms(void) {
  const char *s = getenv("SLOW_FSYNC_MS");
  long ms = s != NULL ? atol(s) : 10;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

int fsync(int fd) {
  static int (*real)(int);
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  pause_ms();
  return real(fd);
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  pause_ms();
  return real(fd);
}
