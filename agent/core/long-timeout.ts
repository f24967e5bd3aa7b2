// setTimeout for any delay: Node fires a delay over 2^31-1 ms (~24.8 days) at once, and MQTT's session
// expiry and will delay intervals go up to 2^32-1 seconds. Longer delays are waited in chained steps.

/** The longest delay setTimeout takes; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Calls `callback` after `delayMs` (unref'd: it does not keep the process alive); returns the cancel. */
export function longTimeout(delayMs: number, callback: () => void): () => void {
  const deadline = Date.now() + delayMs;
  let timer: NodeJS.Timeout;
  const arm = (): void => {
    timer = setTimeout(
      () => (Date.now() < deadline ? arm() : callback()),
      Math.min(deadline - Date.now(), MAX_TIMER_MS),
    );
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}
