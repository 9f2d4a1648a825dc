// gen.mjs regenerates the fixtures ../bitcoin-auth.json and ../bsm-sdk.json
// with the npm libraries that wallets and clients use, so the Go verifier is
// tested against signatures it did not make itself.
//
//	cd authtoken/testdata/gen && npm ci && node gen.mjs
//
// BRC-77 signatures carry a random key ID, so every run produces different
// (equally valid) tokens; commit the output together with any change here.
import { readFileSync, writeFileSync } from 'node:fs'
import { getAuthToken, verifyAuthToken } from 'bitcoin-auth'
import { BSM, BigNumber, ECDSA, Hash, PrivateKey, Signature, SignedMessage, Utils } from '@bsv/sdk'

const version = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version
const libs = `bitcoin-auth@${version('bitcoin-auth')}, @bsv/sdk@${version('@bsv/sdk')}`

// Keys. The first two are the static test keys of the bitcoin-auth
// repository (test/static-vectors.test.ts), the third is the key of @bsv/sdk's
// own BSM test (src/compat/__tests/BSM.test.ts). Test keys only.
const keys = {
  brc77static: 'L5JXt5QF39GECz23VqUMTs6gYx2s4R3rsjEz4bJ4wnJ6Su16VHur',
  bsmstatic: 'KyAx8SM5W8AA7jHvcY9Lwq9WWYgt2mV2kN9xg6mUoTyRKdQiMXy8',
  sdk: 'L211enC224G1kV8pyyq7bjVd9SxZebnRYEzzM3i7ZHCc1c5E7dQu',
}

const pubkeyOf = (wif) => PrivateKey.fromWif(wif).toPublicKey().toString()
const addressOf = (wif) => PrivateKey.fromWif(wif).toPublicKey().toAddress()

// ---- bitcoin-auth tokens -------------------------------------------------

const tokens = []
const addToken = (t) => {
  const payload = { requestPath: t.requestPath, timestamp: t.timestamp }
  if (t.body != null) payload.body = t.body
  let jsVerifies
  try {
    jsVerifies = verifyAuthToken(t.token, payload)
  } catch (e) {
    jsVerifies = false
  }
  tokens.push({ ...t, js_verifies: jsVerifies })
}

const cases = [
  {
    description: 'bsm, no body, query string (bitcoin-auth static vector)',
    source: 'bitcoin-auth repo test/static-vectors.test.ts (key, path, timestamp); token made by ' + libs,
    key: 'bsmstatic', scheme: 'bsm', requestPath: '/api/static/bsm/no-body?query=1',
    timestamp: '2023-10-27T11:00:00.000Z', body: null,
  },
  {
    description: 'brc77, JSON body (bitcoin-auth static vector)',
    source: 'bitcoin-auth repo test/static-vectors.test.ts (key, path, body, timestamp); token made by ' + libs,
    key: 'brc77static', scheme: 'brc77', requestPath: '/api/static/brc77/body',
    timestamp: '2023-10-27T10:00:00.000Z', body: JSON.stringify({ message: 'static brc77 test' }),
  },
  {
    description: 'bsm, no body',
    key: 'sdk', scheme: 'bsm', requestPath: '/backup',
    timestamp: '2026-11-21T22:00:00.000Z', body: null,
  },
  {
    description: 'bsm, body',
    key: 'sdk', scheme: 'bsm', requestPath: '/backup',
    timestamp: '2026-11-21T22:00:00.123Z', body: 'c2FsdHNhbHRzYWx0c2FsdGl2aXZpdml2Y2lwaGVydGV4dA==',
  },
  {
    description: 'brc77, no body',
    key: 'sdk', scheme: 'brc77', requestPath: '/backup',
    timestamp: '2026-11-21T22:00:00.000Z', body: null,
  },
  {
    description: 'brc77, body',
    key: 'sdk', scheme: 'brc77', requestPath: '/backup',
    timestamp: '2026-11-21T22:00:00.999Z', body: 'c2FsdHNhbHRzYWx0c2FsdGl2aXZpdml2Y2lwaGVydGV4dA==',
  },
  {
    description: 'brc77 (library default scheme), query string, UTF-8 body',
    key: 'brc77static', scheme: undefined,
    requestPath: '/authorize?client_id=app&state=a%20b&scope=profile+backup',
    timestamp: '2026-11-21T22:00:00.000Z', body: '{"note":"Virès is Numéris ✓"}',
  },
  {
    description: 'bsm, query string, UTF-8 body',
    key: 'bsmstatic', scheme: 'bsm', requestPath: '/backup?x=%2F&y=1',
    timestamp: '2026-11-21T22:00:00.000Z', body: '{"note":"Virès is Numéris ✓"}',
  },
  // The bound form of the request target: the library signs whatever
  // requestPath it is given, so "<METHOD> <absolute URL>" goes there.
  {
    description: 'bsm, bound form, no body',
    key: 'sdk', scheme: 'bsm', requestPath: 'DELETE https://auth.example.com/backup',
    timestamp: '2026-11-21T22:00:00.000Z', body: null,
  },
  {
    description: 'brc77, bound form, query string, body',
    key: 'brc77static', scheme: 'brc77', requestPath: 'PUT https://auth.example.com/backup?v=1',
    timestamp: '2026-11-21T22:00:00.000Z', body: 'c2FsdHNhbHRzYWx0c2FsdGl2aXZpdml2Y2lwaGVydGV4dA==',
  },
]

for (const c of cases) {
  const token = getAuthToken({
    privateKeyWif: keys[c.key],
    requestPath: c.requestPath,
    body: c.body ?? undefined,
    scheme: c.scheme,
    timestamp: c.timestamp,
  })
  addToken({
    description: c.description,
    source: c.source ?? 'made by ' + libs + ' getAuthToken',
    wif: keys[c.key],
    pubkey: pubkeyOf(keys[c.key]),
    address: addressOf(keys[c.key]),
    scheme: c.scheme ?? 'brc77',
    requestPath: c.requestPath,
    timestamp: c.timestamp,
    body: c.body,
    token,
    want: 'ok',
  })
}

// A brc77 token whose pubkey part names another key than the signer inside
// the envelope. bitcoin-auth's verifyAuthToken accepts it (js_verifies is
// true): it never compares the two. authd must refuse it.
{
  const signer = keys.sdk
  const victim = keys.bsmstatic
  const requestPath = '/backup'
  const timestamp = '2026-11-21T22:00:00.000Z'
  const signed = getAuthToken({ privateKeyWif: signer, requestPath, scheme: 'brc77', timestamp })
  const parts = signed.split('|')
  parts[0] = pubkeyOf(victim)
  addToken({
    description: 'brc77, token pubkey is not the envelope signer (the JS library accepts this)',
    source: 'made by ' + libs + ' getAuthToken, then the pubkey part replaced by another key',
    wif: signer, pubkey: pubkeyOf(victim), address: addressOf(victim), scheme: 'brc77',
    requestPath, timestamp, body: null, token: parts.join('|'), want: 'invalid_signature',
  })
}

// The same substitution for bsm: the signature does not verify for the key.
{
  const requestPath = '/backup'
  const timestamp = '2026-11-21T22:00:00.000Z'
  const signed = getAuthToken({ privateKeyWif: keys.sdk, requestPath, scheme: 'bsm', timestamp })
  const parts = signed.split('|')
  parts[0] = pubkeyOf(keys.bsmstatic)
  addToken({
    description: 'bsm, token pubkey is not the signer',
    source: 'made by ' + libs + ' getAuthToken, then the pubkey part replaced by another key',
    wif: keys.sdk, pubkey: pubkeyOf(keys.bsmstatic), address: addressOf(keys.bsmstatic), scheme: 'bsm',
    requestPath, timestamp, body: null, token: parts.join('|'), want: 'invalid_signature',
  })
}

// A BRC-77 signature addressed to one verifier (not "anyone"): a server that
// is not that verifier cannot check it.
{
  const requestPath = '/backup'
  const timestamp = '2026-11-21T22:00:00.000Z'
  const key = PrivateKey.fromWif(keys.sdk)
  const verifier = new PrivateKey(21).toPublicKey()
  const message = Utils.toArray(`${requestPath}|${timestamp}|`)
  const sig = Utils.toBase64(SignedMessage.sign(message, key, verifier))
  const token = `${pubkeyOf(keys.sdk)}|brc77|${timestamp}|${requestPath}|${sig}`
  addToken({
    description: 'brc77 signed for a specific verifier, not for anyone',
    source: 'made by ' + libs + ' SignedMessage.sign with a verifier public key',
    wif: keys.sdk, pubkey: pubkeyOf(keys.sdk), address: addressOf(keys.sdk), scheme: 'brc77',
    requestPath, timestamp, body: null, token, want: 'invalid_signature',
  })
}

writeFileSync(new URL('../bitcoin-auth.json', import.meta.url), JSON.stringify({
  comment: 'X-Auth-Token fixtures in the bitcoin-auth syntax. Regenerate with testdata/gen (node gen.mjs).',
  generator: libs,
  tokens,
}, null, 2) + '\n')

// ---- BSM signatures of messages of every CompactSize length class --------

// A message is `length` bytes of the UTF-8 bytes of `repeat`, repeated and cut.
const messageBytes = (repeat, length) => {
  const unit = Utils.toArray(repeat, 'utf8')
  const out = []
  while (out.length < length) out.push(...unit.slice(0, length - out.length))
  return out
}

const bsm = []
const signBSM = (wif, msg, compressed) => {
  const key = PrivateKey.fromWif(wif)
  const hash = BSM.magicHash(msg)
  const h = new BigNumber(hash)
  const sig = ECDSA.sign(h, key, true)
  const recovery = sig.CalculateRecoveryFactor(key.toPublicKey(), h)
  return { hash: Utils.toHex(hash), signature: sig.toCompact(recovery, compressed, 'base64') }
}
const uncompressedAddress = (wif) =>
  Utils.toBase58Check(Hash.hash160(PrivateKey.fromWif(wif).toPublicKey().encode(false)), [0x00])

const lengths = [0, 1, 252, 253, 254, 65535, 65536, 70000]
for (const length of lengths) {
  for (const compressed of [true, false]) {
    const repeat = length % 2 === 0 ? '0123456789abcdef' : 'Virès is Numéris ✓ '
    const msg = messageBytes(repeat, length)
    const { hash, signature } = signBSM(keys.sdk, msg, compressed)
    // The library's own BSM.verify, as a cross-check of the signature.
    if (!BSM.verify(msg, Signature.fromCompact(signature, 'base64'), PrivateKey.fromWif(keys.sdk).toPublicKey())) {
      throw new Error('BSM.verify rejected a signature just made')
    }
    bsm.push({
      source: 'made by ' + libs + ' (BSM.magicHash, ECDSA.sign, Signature.toCompact)',
      address: compressed ? addressOf(keys.sdk) : uncompressedAddress(keys.sdk),
      compressed,
      message_repeat: repeat,
      message_length: length,
      magic_hash: hash,
      signature,
    })
  }
}
// BSM.sign itself (compressed header), for the plain API path.
for (const text of ['hello world', '', 'Virès is Numéris']) {
  bsm.push({
    source: 'made by ' + libs + ' BSM.sign',
    address: addressOf(keys.sdk),
    compressed: true,
    message: text,
    magic_hash: Utils.toHex(BSM.magicHash(Utils.toArray(text, 'utf8'))),
    signature: BSM.sign(Utils.toArray(text, 'utf8'), PrivateKey.fromWif(keys.sdk)),
  })
}

writeFileSync(new URL('../bsm-sdk.json', import.meta.url), JSON.stringify({
  comment: 'BSM signatures over messages of every CompactSize length class (1-byte, 0xFD, 0xFE). A message is message_length bytes of the UTF-8 of message_repeat, repeated and cut (or message, when given). Regenerate with testdata/gen (node gen.mjs).',
  generator: libs,
  wif: keys.sdk,
  vectors: bsm,
}, null, 2) + '\n')

console.log(`wrote ${tokens.length} tokens and ${bsm.length} BSM vectors (${libs})`)
