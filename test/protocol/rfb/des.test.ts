import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { desEncryptBlock, vncAuthResponse } from '../../../src/protocol/rfb/security/des';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('DES', () => {
  test.each([
    // FIPS/NBS validation vectors (NIST SP 800-17 and the classic worked example).
    ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'],
    ['0101010101010101', '95f8a5e5dd31d900', '8000000000000000'],
    ['0101010101010101', 'dd7f121ca5015619', '4000000000000000'],
    ['8001010101010101', '0000000000000000', '95a8d72813daa94d'],
    ['1046913489980131', '0000000000000000', '88d55e54f54c97b4'],
  ])('key %s encrypts %s to %s', (key, plain, cipher) => {
    expect(toHex(desEncryptBlock(hex(key), hex(plain)))).toBe(cipher);
  });

  test('agrees with OpenSSL (legacy provider) on random blocks', () => {
    for (let i = 0; i < 5; i++) {
      const key = randomBytes(8);
      const block = randomBytes(8);
      const out = execFileSync('openssl', ['enc', '-des-ecb', '-provider', 'legacy', '-provider', 'default', '-nopad', '-K', key.toString('hex')], { input: block });
      expect(toHex(desEncryptBlock(key, block))).toBe(out.toString('hex'));
    }
  });

  test('the VNC response reverses each password byte and encrypts both challenge halves', () => {
    const challenge = hex('000102030405060708090a0b0c0d0e0f');
    // Key 'secret' → bytes bit-reversed, zero padded: 0xce 0xa6 0xc6 0x4e 0xa6 0x2e 0x00 0x00.
    const key = hex('cea6c64ea62e0000');
    const expected = toHex(desEncryptBlock(key, challenge.subarray(0, 8))) + toHex(desEncryptBlock(key, challenge.subarray(8)));
    expect(toHex(vncAuthResponse('secret', challenge))).toBe(expected);
    // Passwords longer than 8 bytes are truncated.
    expect(toHex(vncAuthResponse('secretXYZ', challenge).subarray(0, 8))).not.toBe(toHex(vncAuthResponse('secreX', challenge).subarray(0, 8)));
    expect(toHex(vncAuthResponse('12345678', challenge))).toBe(toHex(vncAuthResponse('123456789', challenge)));
  });
});
