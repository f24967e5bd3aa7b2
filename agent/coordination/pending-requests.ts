// Request/reply over the mesh by request id: a reply settles the waiting request, silence times it out.
// Ids are random 32-bit numbers; 0 is never used (SENSOR-VALUE pushes carry 0).
import { randomInt } from 'node:crypto';

export class PendingRequests<Reply extends { requestId: number }> {
  readonly #waiting = new Map<number, { from: string; settle: (reply: Reply) => void }>();

  /** Sends with a fresh id and resolves with the reply from `peer`, or rejects with `onTimeout()` after `timeoutMs`. */
  request(
    peer: string,
    send: (requestId: number) => Promise<void>,
    timeoutMs: number,
    onTimeout: () => Error,
  ): Promise<Reply> {
    let requestId = randomInt(1, 0xffff_ffff);
    while (this.#waiting.has(requestId)) requestId = randomInt(1, 0xffff_ffff);
    const id = requestId;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(onTimeout());
      }, timeoutMs);
      this.#waiting.set(id, {
        from: peer,
        settle: (reply) => {
          clearTimeout(timer);
          this.#waiting.delete(id);
          resolve(reply);
        },
      });
      send(id).catch((error: unknown) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        reject(error);
      });
    });
  }

  /** A reply arrived; true when somebody was waiting for it (from that peer). */
  settle(from: string, reply: Reply): boolean {
    const waiting = this.#waiting.get(reply.requestId);
    if (waiting === undefined || waiting.from !== from) return false;
    waiting.settle(reply);
    return true;
  }
}
