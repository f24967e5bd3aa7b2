// MQTT 3.1.1 CONNACK return codes and MQTT 5 reason codes used by the broker.

export const RC = {
  unacceptableProtocol: 0x01,
  identifierRejected: 0x02,
  serverUnavailable: 0x03,
  badCredentials: 0x04,
  notAuthorized: 0x05,
} as const;

export const REASON = {
  success: 0x00,
  disconnectWithWill: 0x04,
  noSubscriptionExisted: 0x11,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  implementationSpecific: 0x83,
  unsupportedProtocol: 0x84,
  badCredentials: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  badAuthMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdNotFound: 0x92,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  sharedNotSupported: 0x9e,
} as const;

/**
 * The Reason String sent with an error reason code, so that a client shows the cause (paho, for one,
 * otherwise names some codes after their packet's success code).
 */
export const REASON_TEXT: Readonly<Record<number, string>> = {
  [REASON.unspecified]: 'refused by the nearmesh agent',
  [REASON.malformed]: 'malformed packet',
  [REASON.protocolError]: 'protocol error',
  [REASON.unsupportedProtocol]: 'unsupported MQTT protocol version',
  [REASON.badCredentials]: 'bad user name or password',
  [REASON.notAuthorized]: 'not authorized by the access control list',
  [REASON.serverUnavailable]: 'no room for another session',
  [REASON.badAuthMethod]: 'enhanced authentication is not supported',
  [REASON.keepAliveTimeout]: 'keep alive timeout',
  [REASON.sessionTakenOver]: 'session taken over by a new connection with this client id',
  [REASON.topicFilterInvalid]: 'invalid topic filter',
  [REASON.topicNameInvalid]: 'invalid topic name',
  [REASON.packetIdNotFound]: 'packet identifier not found',
  [REASON.receiveMaximumExceeded]: 'more QoS 2 messages unreleased than the Receive Maximum',
  [REASON.topicAliasInvalid]: 'topic aliases from clients are not accepted (Topic Alias Maximum 0)',
  [REASON.packetTooLarge]: 'packet larger than the Maximum Packet Size',
  [REASON.quotaExceeded]: 'quota exceeded',
  [REASON.payloadFormatInvalid]: 'the payload format indicator says UTF-8 and the payload is not',
};
