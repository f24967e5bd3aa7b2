// Noise_XXpsk0_25519_ChaChaPoly_SHA256, the v2 handshake (PROTOCOL.md §9), against a second implementation:
// cacophony publishes no XXpsk0 vectors, so Debian's python3-dissononce plays the other side. With the same
// static and ephemeral keys, prologue, PSK and payloads, both write the same three messages byte for byte, each
// reads the other's, and both end with the same handshake hash and transport keys.
import { spawnSync } from 'node:child_process';
import { expect, test } from 'vitest';
import { HandshakeState, keyPairFromPrivateKey } from '../../../agent/security/noise.js';
import { SECURE_CHANNEL_PATTERN, SECURE_CHANNEL_PROLOGUE } from '../../../agent/security/secure-channel.js';
import { describeWhenAvailable } from '../../support/requirements.js';
import { fromHex, toHex } from '../protocol/vector-json.js';

const PYTHON = '/usr/bin/python3';
const INPUT = {
  initiatorStatic: '11'.repeat(32),
  initiatorEphemeral: '22'.repeat(32),
  responderStatic: '33'.repeat(32),
  responderEphemeral: '44'.repeat(32),
  psk: '55'.repeat(32),
  prologue: toHex(SECURE_CHANNEL_PROLOGUE),
  payloads: ['', '726573706f6e646572206964656e74697479', '696e69746961746f72206964656e74697479'],
};

/** Runs the whole handshake in dissononce; prints the messages, the handshake hash and a sealed probe. */
const SCRIPT = `
import json, sys
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.handshakepatterns.interactive.XX import XXHandshakePattern
from dissononce.processing.modifiers.psk import PSKPatternModifier
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.dh.x25519.private import PrivateKey
from dissononce.hash.sha256 import SHA256Hash

given = json.load(sys.stdin)
dh = X25519DH()
keys = lambda name: dh.generate_keypair(PrivateKey(bytes.fromhex(given[name])))

class FixedEphemeral(X25519DH):
    # dissononce makes its own ephemeral key when writing "e"; this one hands out the given one.
    def __init__(self, name):
        super().__init__()
        self.ephemeral = name
    def generate_keypair(self, privatekey=None):
        return super().generate_keypair(privatekey or PrivateKey(bytes.fromhex(given[self.ephemeral])))

pattern = PSKPatternModifier(0).modify(XXHandshakePattern())
def state(ephemeral):
    return HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), SHA256Hash()), FixedEphemeral(ephemeral))
initiator, responder = state("initiatorEphemeral"), state("responderEphemeral")
prologue, psk = bytes.fromhex(given["prologue"]), bytes.fromhex(given["psk"])
initiator.initialize(pattern, True, prologue, s=keys("initiatorStatic"), psks=(psk,))
responder.initialize(pattern, False, prologue, s=keys("responderStatic"), psks=(psk,))
messages, received = [], []
for index, payload in enumerate(given["payloads"]):
    writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
    buffer = bytearray()
    result = writer.write_message(bytes.fromhex(payload), buffer)
    messages.append(bytes(buffer).hex())
    out = bytearray()
    reader_result = reader.read_message(bytes(buffer), out)
    received.append(bytes(out).hex())
    if result is not None:
        sender = result[0]
probe = sender.encrypt_with_ad(b"", b"probe")
json.dump({"messages": messages, "received": received, "hash": initiator.symmetricstate.get_handshake_hash().hex(), "probe": probe.hex()}, sys.stdout)
`;

function missing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import dissononce'], { encoding: 'utf8' });
  if (probe.error !== undefined) return `${PYTHON} cannot run (apt-get install python3 python3-dissononce)`;
  return probe.status === 0
    ? undefined
    : 'python3-dissononce is not installed (apt-get install python3-dissononce)';
}

describeWhenAvailable('Noise_XXpsk0 against python3-dissononce', missing(), () => {
  test('both write the same messages, read each other, and agree on the hash and transport keys', () => {
    const child = spawnSync(PYTHON, ['-c', SCRIPT], { input: JSON.stringify(INPUT), encoding: 'utf8' });
    expect(child.stderr).toBe('');
    const theirs = JSON.parse(child.stdout) as {
      messages: string[];
      received: string[];
      hash: string;
      probe: string;
    };

    const state = (initiator: boolean): HandshakeState =>
      new HandshakeState({
        pattern: SECURE_CHANNEL_PATTERN,
        initiator,
        staticKeyPair: keyPairFromPrivateKey(
          fromHex(initiator ? INPUT.initiatorStatic : INPUT.responderStatic),
        ),
        ephemeralKeyPair: keyPairFromPrivateKey(
          fromHex(initiator ? INPUT.initiatorEphemeral : INPUT.responderEphemeral),
        ),
        prologue: SECURE_CHANNEL_PROLOGUE,
        psk: fromHex(INPUT.psk),
      });
    const initiator = state(true);
    const responder = state(false);
    const ours: string[] = [];
    INPUT.payloads.forEach((payload, index) => {
      const [writer, reader] = index % 2 === 0 ? [initiator, responder] : [responder, initiator];
      const message = writer.writeMessage(fromHex(payload));
      ours.push(toHex(message));
      // Ours reads theirs, which is the same bytes: checked once more below against their list.
      expect(toHex(reader.readMessage(fromHex(theirs.messages[index] as string)))).toBe(payload);
    });
    expect(ours).toEqual(theirs.messages);
    expect(theirs.received).toEqual(INPUT.payloads);
    // The first message is e and the tag of the empty payload under the PSK: 48 bytes, as §9 says.
    expect(ours[0]).toHaveLength(96);
    expect(toHex(initiator.handshakeHash)).toBe(theirs.hash);
    expect(toHex(responder.handshakeHash)).toBe(theirs.hash);
    // The initiator's first transport message: what dissononce sealed, our responder opens.
    expect(
      toHex(responder.transportCiphers().receive.decryptWithAd(new Uint8Array(0), fromHex(theirs.probe))),
    ).toBe(toHex(new TextEncoder().encode('probe')));
  });
});
