// verify.js -- update from a Rhine origin or mirror with tuf-js (an independent TUF client) and
// download targets. Usage: node verify.js CONFIG.json; prints JSON {"targets": {path: sha256}}.
// CONFIG: {metadataUrl, targetUrl, root, metadataDir, targetDir, targets: [...], h2: bool, ca}
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Updater, BaseFetcher } = require('tuf-js');

// Fetches over HTTP/2 through undici (allowH2: ALPN h2 over TLS), since Node's built-in fetch
// speaks only HTTP/1.1. The test checks the server's h2 connection counter to prove h2 was used.
class H2Fetcher extends BaseFetcher {
  constructor(ca) {
    super();
    const undici = require('undici');
    this.undici = undici;
    this.dispatcher = new undici.Agent({ allowH2: true, connect: ca ? { ca } : {} });
  }
  async fetch(url) {
    const res = await this.undici.request(url, { dispatcher: this.dispatcher });
    if (res.statusCode !== 200) {
      res.body.resume();
      const { DownloadHTTPError } = require('tuf-js/dist/error');
      throw new DownloadHTTPError(`Failed to download ${url}`, res.statusCode);
    }
    const { Readable } = require('stream');
    return Readable.toWeb(res.body);
  }
}

async function main() {
  const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  fs.mkdirSync(cfg.metadataDir, { recursive: true });
  fs.mkdirSync(cfg.targetDir, { recursive: true });
  if (!fs.existsSync(path.join(cfg.metadataDir, 'root.json'))) {
    fs.copyFileSync(cfg.root, path.join(cfg.metadataDir, 'root.json'));
  }
  const opts = {
    metadataBaseUrl: cfg.metadataUrl,
    targetBaseUrl: cfg.targetUrl,
    metadataDir: cfg.metadataDir,
    targetDir: cfg.targetDir,
  };
  if (cfg.h2) opts.fetcher = new H2Fetcher(cfg.ca ? fs.readFileSync(cfg.ca) : undefined);
  const updater = new Updater(opts);
  await updater.refresh();
  const out = { targets: {} };
  for (const t of cfg.targets || []) {
    const info = await updater.getTargetInfo(t);
    if (!info) throw new Error(`target ${t} not found`);
    const file = path.join(cfg.targetDir, t.replace(/\//g, '_'));
    await updater.downloadTarget(info, file);
    out.targets[t] = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(`tuf-js: ${err.name}: ${err.message}\n`);
  process.exit(1);
});
