// Drives the real @actions/artifact client (inside upload-artifact@v4 and download-artifact@v4)
// against runnel's artifact service. Run by ../it/artifacts.rs with ACTIONS_RESULTS_URL,
// ACTIONS_RUNTIME_TOKEN and GITHUB_SERVER_URL set; the working directory is a scratch
// directory. `upload` stores "report"; `download` lists, finds and downloads it. Prints one line
// "RESULT <json>" and exits non-zero on any error.
'use strict';

const fs = require('fs');
const { DefaultArtifactClient } = require('@actions/artifact');

async function main() {
  const client = new DefaultArtifactClient();
  const result = {};
  if (process.argv[2] === 'upload') {
    fs.mkdirSync('data/sub', { recursive: true });
    fs.writeFileSync('data/a.txt', 'hello artifact');
    // Larger than the client's 8 MiB upload buffer, so it arrives in several blocks.
    const big = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    fs.writeFileSync('data/sub/b.bin', big);
    const uploaded = await client.uploadArtifact('report', ['data/a.txt', 'data/sub/b.bin'], 'data', {
      compressionLevel: 0,
    });
    result.id = uploaded.id;
    result.size = uploaded.size;
  } else {
    const listed = await client.listArtifacts();
    result.names = listed.artifacts.map((a) => a.name);
    const found = await client.getArtifact('report');
    result.foundSize = found.artifact.size;
    await client.downloadArtifact(found.artifact.id, { path: 'out' });
    result.text = fs.readFileSync('out/a.txt', 'utf8');
    result.binSize = fs.statSync('out/sub/b.bin').size;
  }
  console.log('RESULT ' + JSON.stringify(result));
}

main().catch((error) => {
  console.error('FAILED', error);
  process.exit(1);
});
