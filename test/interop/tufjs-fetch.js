// Fetches one target with tuf-js, an independent TUF client, from a
// repository served over HTTP. Usage:
//   node tufjs-fetch.js BASE_URL ROOT.json TARGET OUT_FILE
// Exit 0 and the target's bytes in OUT_FILE on success; exit 1 with the
// client's error on stderr when the repository is refused.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Updater } = require('tuf-js');

async function main() {
  const [base, rootFile, target, out] = process.argv.slice(2);
  if (!out) {
    console.error('usage: node tufjs-fetch.js BASE_URL ROOT.json TARGET OUT_FILE');
    process.exit(2);
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-tufjs-'));
  try {
    const metadataDir = path.join(work, 'metadata');
    const targetDir = path.join(work, 'targets');
    fs.mkdirSync(metadataDir);
    fs.mkdirSync(targetDir);
    fs.copyFileSync(rootFile, path.join(metadataDir, 'root.json'));
    const updater = new Updater({
      metadataBaseUrl: base + '/metadata',
      targetBaseUrl: base + '/targets',
      metadataDir,
      targetDir,
      config: { fetchRetries: 0 },
    });
    await updater.refresh();
    const info = await updater.getTargetInfo(target);
    if (!info) throw new Error('target ' + target + ' not found');
    const file = await updater.downloadTarget(info, path.join(targetDir, 'out'));
    fs.copyFileSync(file, out);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error('tuf-js: ' + (err && err.message ? err.message : String(err)));
  process.exit(1);
});
