// gen.mjs makes the fixtures of authd's backup tests with the npm libraries
// wallets use: bitcoin-backup (encryptBackup) and @bsv/sdk (keys, HD keys,
// mnemonics).
//
//	cd backup/testdata/gen && npm ci && node gen.mjs
//
// It writes, in backup/testdata/bitcoin-backup/:
//   - <name>.txt: exactly the string encryptBackup returned (no newline);
//   - manifest.json: for each <name>, the passphrase, the PBKDF2 iterations,
//     the AES key they derive (so the Go tests need not run 600,000 PBKDF2
//     rounds per fixture; they derive one to check), and the SHA-256 and
//     field names of the exact plaintext the library encrypted, so the Go
//     tests can decrypt the fixture and prove it is the library's output;
//   - plaintext.json: unencrypted key material in the forms wallets export
//     it (WIF, xprv, tprv, mnemonics, the backup payloads themselves), which
//     PUT /backup must refuse with encryption_required.
//
// Keys are random on every run: these are throwaway test keys.
import { writeFileSync, mkdirSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encryptBackup, decryptBackup, DEFAULT_PBKDF2_ITERATIONS } from 'bitcoin-backup'
import { HD, Mnemonic, PrivateKey } from '@bsv/sdk'

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'bitcoin-backup')
mkdirSync(out, { recursive: true })

const createdAt = '2026-01-15T12:00:00.000Z'
const wif = () => PrivateKey.fromRandom().toWif()
const xprv = HD.fromRandom().toString()
const tprvKey = HD.fromRandom()
tprvKey.constants = { privKey: 0x04358394, pubKey: 0x043587cf }
tprvKey.versionBytesNum = tprvKey.constants.privKey
const tprv = tprvKey.toString()
const mnemonic12 = Mnemonic.fromRandom(128).toString()
const mnemonic24 = Mnemonic.fromRandom(256).toString()

// One payload of each shape bitcoin-backup knows, plus a large vault so a
// backup of realistic bulk (about 90 KB) is covered too.
const payloads = {
  wif: { wif: wif(), label: 'spending key', createdAt },
  'bap-master': { ids: randomBytes(96).toString('base64'), xprv, mnemonic: mnemonic12, label: 'BAP master', createdAt },
  'bap-master-type42': { ids: randomBytes(96).toString('base64'), rootPk: wif(), createdAt },
  'bap-member': { wif: wif(), id: randomBytes(16).toString('hex'), createdAt },
  onesat: { ordPk: wif(), payPk: wif(), identityPk: wif(), label: '1Sat wallet', createdAt },
  vault: { encryptedVault: randomBytes(64 * 1024).toString('base64'), scheme: 'vscode-bitcoin-v1', createdAt },
}

const passphrase = 'correct horse battery staple'

// deriveKey repeats bitcoin-backup's key derivation (PBKDF2-SHA256 over the
// passphrase with the backup's own 16-byte salt) and returns the key, hex.
async function deriveKey(encrypted, iterations) {
  const salt = Buffer.from(encrypted, 'base64').subarray(0, 16)
  const material = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveBits'])
  const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', salt, iterations, hash: 'SHA-256' }, material, 256)
  return Buffer.from(bits).toString('hex')
}
const manifest = []
for (const [name, payload] of Object.entries(payloads)) {
  const encrypted = await encryptBackup(payload, passphrase)
  // Prove the library reads back what it wrote before the fixture is kept.
  const back = await decryptBackup(encrypted, passphrase)
  if (JSON.stringify(back) !== JSON.stringify(payload)) {
    throw new Error(`${name}: decryptBackup did not return the payload`)
  }
  writeFileSync(join(out, `${name}.txt`), encrypted)
  manifest.push({
    name,
    file: `${name}.txt`,
    passphrase,
    iterations: DEFAULT_PBKDF2_ITERATIONS,
    key_hex: await deriveKey(encrypted, DEFAULT_PBKDF2_ITERATIONS),
    // encryptData encrypts JSON.stringify({...payload, createdAt}); with
    // createdAt set, that is JSON.stringify(payload).
    plaintext_sha256: createHash('sha256').update(JSON.stringify(payload)).digest('hex'),
    fields: Object.keys(payload),
  })
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')

const plaintext = {
  wif_compressed: PrivateKey.fromRandom().toWif(),
  wif_testnet: PrivateKey.fromRandom().toWif([0xef]),
  xprv,
  tprv,
  mnemonic_12: mnemonic12,
  mnemonic_24: mnemonic24,
  payload_wif: JSON.stringify(payloads.wif),
  payload_bap_master: JSON.stringify(payloads['bap-master'], null, 2),
  payload_onesat: JSON.stringify(payloads.onesat),
}
writeFileSync(join(out, 'plaintext.json'), JSON.stringify(plaintext, null, 2) + '\n')
console.log(`wrote ${manifest.length} backups and plaintext.json to ${out}`)
