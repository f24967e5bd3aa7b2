// The control socket's language: one JSON object per line each way. Requests are validated here,
// once, where they enter; every client command and the server share these shapes.
import { z } from 'zod';

export const MAX_CONTROL_LINE_BYTES = 4 << 20;

export const requestSchema = z.discriminatedUnion('cmd', [
  z.object({ id: z.number().int(), cmd: z.literal('id') }).strict(),
  z.object({ id: z.number().int(), cmd: z.literal('status') }).strict(),
  z.object({ id: z.number().int(), cmd: z.literal('peers') }).strict(),
  z
    .object({
      id: z.number().int(),
      cmd: z.literal('send'),
      peer: z.string().min(1).max(128),
      /** The payload as base64; text from the CLI is UTF-8 encoded by the client. */
      payload: z.base64(),
      timeout_ms: z.number().int().positive().max(3_600_000).optional(),
    })
    .strict(),
  z.object({ id: z.number().int(), cmd: z.literal('listen') }).strict(),
]);

export type ControlRequest = z.infer<typeof requestSchema>;
export type ControlCommand = ControlRequest['cmd'];

export interface ControlErrorBody {
  code: string;
  message: string;
}

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: ControlErrorBody }
  | { id: number; event: unknown };

/** A received message as `listen` streams it. */
export interface ListenEvent {
  from: string;
  from_name: string;
  /** The payload as UTF-8 text (invalid sequences replaced). */
  payload: string;
  payload_base64: string;
  received_at: string;
}
