// The coordination topics of the MQTT endpoint (docs/MQTT.md, "Coordination topics"): what each topic
// means to the gateway, and what is not one of them.
import { describe, expect, it } from 'vitest';
import {
  callTopic,
  defaultReplyTopic,
  invokeAnswerTopic,
  invokeTopic,
  parseCallTopic,
  parseInvokeAnswerTopic,
  parseProvideTopic,
  provideTopic,
  sensorTopic,
} from '../../../agent/gateway/topic-map.js';

describe('nearmesh/call/<target>/<action>', () => {
  it('takes a peer id or name, group:NAME or all, and an action name', () => {
    expect(parseCallTopic('nearmesh/call/garage-pi/light.set')).toEqual({
      target: 'garage-pi',
      action: 'light.set',
    });
    expect(parseCallTopic('nearmesh/call/group:hall/light.set')).toEqual({
      target: 'group:hall',
      action: 'light.set',
    });
    expect(parseCallTopic(callTopic('all', 'x'))).toEqual({ target: 'all', action: 'x' });
  });

  it('is invalid without a target or a valid action name, and unrelated topics are not calls', () => {
    for (const topic of [
      'nearmesh/call/',
      'nearmesh/call/peer',
      'nearmesh/call//light.set',
      'nearmesh/call/group:/light.set',
      'nearmesh/call/peer/light.set/more',
      'nearmesh/call/peer/light..set',
      'nearmesh/call/peer/',
    ]) {
      expect(parseCallTopic(topic), topic).toBe('invalid');
    }
    expect(parseCallTopic('nearmesh/send/peer')).toBeUndefined();
    expect(parseCallTopic('nearmesh/caller/x/y')).toBeUndefined();
  });
});

describe('what apps provide', () => {
  it('sensor and action names under nearmesh/provide/', () => {
    expect(parseProvideTopic('nearmesh/provide/sensor/room.temp')).toEqual({
      kind: 'sensor',
      name: 'room.temp',
    });
    expect(parseProvideTopic(provideTopic('action', 'light.set'))).toEqual({
      kind: 'action',
      name: 'light.set',
    });
    expect(parseProvideTopic('nearmesh/provide/sensor/a/b')).toBe('invalid');
    expect(parseProvideTopic('nearmesh/provide/gadget/x')).toBe('invalid');
    expect(parseProvideTopic('nearmesh/provide/action/')).toBe('invalid');
    expect(parseProvideTopic('nearmesh/sensor/peer/room.temp')).toBeUndefined();
  });

  it('answers to invocations carry the action and the call id', () => {
    expect(parseInvokeAnswerTopic(invokeAnswerTopic('light.set', 'reply', 'abc'))).toEqual({
      action: 'light.set',
      kind: 'reply',
      callId: 'abc',
    });
    expect(parseInvokeAnswerTopic('nearmesh/invoke/light.set/error/abc')?.kind).toBe('error');
    expect(parseInvokeAnswerTopic(invokeTopic('light.set'))).toBeUndefined();
    expect(parseInvokeAnswerTopic('nearmesh/invoke/light.set/other/abc')).toBeUndefined();
    expect(parseInvokeAnswerTopic('nearmesh/invoke/light.set/reply/')).toBeUndefined();
  });

  it('builds the agent-side topics', () => {
    expect(sensorTopic('peer', 'cpu.temp')).toBe('nearmesh/sensor/peer/cpu.temp');
    expect(defaultReplyTopic('app-1')).toBe('nearmesh/reply/app-1');
    expect(invokeTopic('light.set')).toBe('nearmesh/invoke/light.set');
  });
});
