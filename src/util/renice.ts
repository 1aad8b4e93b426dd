/**
 * Source for an `eval` worker thread (perf, issue 9): lower this thread alone to the lowest CPU
 * priority (nice 19). /proc/thread-self names the thread's id, and setpriority on that id
 * renices only this thread. Best effort: elsewhere than Linux it does nothing.
 */
export const RENICE_THIS_THREAD = `
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (tid > 0) require('node:os').setPriority(tid, 19);
} catch {}
`;
