// What the MQTT gateway needs of coordination: the agent passes its Coordinator, which has all of it.
import type { Coordinator } from '../coordination/coordinator.js';

export type CoordinationPort = Pick<
  Coordinator,
  | 'call'
  | 'read'
  | 'watch'
  | 'actions'
  | 'sensors'
  | 'latest'
  | 'registerAction'
  | 'unregisterAction'
  | 'registerSensor'
  | 'unregisterSensor'
  | 'on'
  | 'off'
> & {
  /** This agent's mesh clock, for calls fired `in` a while. */
  readonly timeSync: { now(): number };
};
