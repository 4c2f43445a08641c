// A thin command line over the npm package age-encryption (typage, by age's
// author), for airlock's interoperability tests (tests/post_quantum.rs).
//
//   node age-js.mjs keygen                      -> identity line, then recipient line
//   node age-js.mjs recipient IDENTITY_FILE     -> the recipient of the identity
//   node age-js.mjs encrypt RECIPIENTS_FILE     -> stdin encrypted (binary age) to stdout
//   node age-js.mjs decrypt IDENTITY_FILE       -> stdin decrypted to stdout
//
// Identity and recipients files are read like age's: one per line, `#`
// comments. AIRLOCK_AGE_JS names the directory whose node_modules holds the
// package (tests/run.sh installs it there with `npm ci`).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { webcrypto } from "node:crypto";

if (!globalThis.crypto) globalThis.crypto = webcrypto; // Node 18

const dir = process.env.AIRLOCK_AGE_JS;
if (!dir) {
  console.error("AIRLOCK_AGE_JS is not set");
  process.exit(2);
}
const age = await import(
  pathToFileURL(join(dir, "node_modules", "age-encryption", "dist", "index.js")).href
);

function lines(path) {
  return readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

async function stdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return new Uint8Array(Buffer.concat(chunks));
}

const [cmd, arg] = process.argv.slice(2);
switch (cmd) {
  case "keygen": {
    const id = await age.generateHybridIdentity();
    process.stdout.write(id + "\n" + (await age.identityToRecipient(id)) + "\n");
    break;
  }
  case "recipient": {
    for (const id of lines(arg)) process.stdout.write((await age.identityToRecipient(id)) + "\n");
    break;
  }
  case "encrypt": {
    const e = new age.Encrypter();
    for (const r of lines(arg)) e.addRecipient(r);
    process.stdout.write(await e.encrypt(await stdin()));
    break;
  }
  case "decrypt": {
    const d = new age.Decrypter();
    for (const id of lines(arg)) d.addIdentity(id);
    process.stdout.write(await d.decrypt(await stdin()));
    break;
  }
  default:
    console.error("usage: age-js.mjs keygen | recipient ID | encrypt RECIPIENTS | decrypt ID");
    process.exit(2);
}
