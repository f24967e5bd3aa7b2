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
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  sharedNotSupported: 0x9e,
} as const;
