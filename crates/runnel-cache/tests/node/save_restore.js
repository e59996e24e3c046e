// Drives the real @actions/cache client against runnel's cache server. Run by
// ../it/node_client.rs with the ACTIONS_* variables set; the working directory is a scratch
// directory. Prints one line "RESULT <json>" and exits non-zero on any mismatch.
'use strict';

const fs = require('fs');
const path = require('path');
const cache = require('@actions/cache');

const paths = ['payload'];

function writePayload(text) {
  fs.rmSync('payload', { recursive: true, force: true });
  fs.mkdirSync(path.join('payload', 'sub'), { recursive: true });
  fs.writeFileSync(path.join('payload', 'a.txt'), text);
  // Some incompressible-ish bytes so the archive is not trivially small.
  const bytes = Buffer.alloc(300000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) % 251;
  fs.writeFileSync(path.join('payload', 'sub', 'b.bin'), bytes);
}

function readPayload() {
  try {
    return fs.readFileSync(path.join('payload', 'a.txt'), 'utf8');
  } catch {
    return null;
  }
}

async function main() {
  const result = {};
  writePayload('first');
  result.saveFirst = await cache.saveCache(paths, 'runnel-node-first');
  writePayload('second');
  result.saveSecond = await cache.saveCache(paths, 'runnel-node-second');
  // Saving an existing key is refused by the server and skipped by the client, not an error.
  result.saveAgain = await cache.saveCache(paths, 'runnel-node-first');

  fs.rmSync('payload', { recursive: true, force: true });
  result.exactKey = await cache.restoreCache(paths, 'runnel-node-first', ['runnel-node-']);
  result.exactContent = readPayload();

  fs.rmSync('payload', { recursive: true, force: true });
  result.fallbackKey = await cache.restoreCache(paths, 'runnel-node-missing', ['runnel-node-']);
  result.fallbackContent = readPayload();

  fs.rmSync('payload', { recursive: true, force: true });
  result.missKey = (await cache.restoreCache(paths, 'absent', ['nothing-'])) ?? null;
  result.missContent = readPayload();

  console.log('RESULT ' + JSON.stringify(result));
}

main().catch((error) => {
  console.error('FAILED', error);
  process.exit(1);
});
