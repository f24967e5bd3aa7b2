// Waiting for a synchronised instant. Timers fire a millisecond or more late, so the last stretch is not
// left to one: the event loop sleeps until TIMER_MARGIN_MS before the instant (sleepUntil), then the thread
// blocks (Atomics.wait, which lets other agents on a busy machine run, unlike a spin) until just before it,
// and spins only the final SPIN_MS (blockUntil). Between the two a caller can get ready, so that only the
// start itself is left for the instant.

const TIMER_MARGIN_MS = 15;
const SPIN_MS = 0.5;
const blocker = new Int32Array(new SharedArrayBuffer(4));

/** Resolves shortly before `targetMs` (at most TIMER_MARGIN_MS, later if the timer is late) without blocking. */
export async function sleepUntil(clock: () => number, targetMs: number): Promise<void> {
  const sleepMs = targetMs - clock() - TIMER_MARGIN_MS;
  if (sleepMs > 0) await new Promise((resolve) => setTimeout(resolve, sleepMs));
}

/**
 * Returns at `targetMs` on `clock`, as exactly as the machine allows (at once if it has passed), blocking the
 * thread for what is left of the wait; call it after sleepUntil.
 */
export function blockUntil(clock: () => number, targetMs: number): void {
  const blockMs = targetMs - clock() - SPIN_MS;
  if (blockMs > 0) Atomics.wait(blocker, 0, 0, blockMs);
  while (clock() < targetMs) {
    // spin: the last fraction of a millisecond
  }
}
