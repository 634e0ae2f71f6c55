// The HTML report rendered by headless Chromium (Debian's chromium package).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBuild } from '../../src/exec/run-build.js';
import { cli, decodePng, EXAMPLES, skipBuilds, storeWithBusybox } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = skipBuilds ?? (existsSync(CHROMIUM) ? undefined : `needs Debian's chromium at ${CHROMIUM} (apt-get install chromium) to render the report headless`);

function chromium(args: string[]): string {
  const profile = mkdtempSync(join(tmpdir(), 'tsbuild-chromium-'));
  try {
    const r = spawnSync(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, ...args],
      { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 },
    );
    if (r.status !== 0) throw new Error(`chromium failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
    return r.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

test('analyze --html: a self-contained page, one bar per layer, waste highlighted, rendered by Chromium', { skip }, async (t) => {
  const f = await storeWithBusybox(t);
  const ctx = join(EXAMPLES, 'run-chaining');
  const dockerfile = join(ctx, 'Dockerfile.unchained');
  await runBuild({ root: f.root, contextDir: ctx, dockerfile, tags: ['rc:unchained'] });
  const html = join(f.dir, 'report.html');
  const r = await cli(['analyze', '--root', f.root, 'rc:unchained', '--dockerfile', dockerfile, '--html', html]);
  assert.equal(r.code, 0);
  const page = readFileSync(html, 'utf8');
  // No external assets: no scripts, stylesheets, images or fonts fetched from anywhere.
  assert.doesNotMatch(page, /<(script|link|img|iframe)\b/i);
  assert.doesNotMatch(page, /(src|href)\s*=\s*["']?(https?:|\/\/|file:)/i);
  assert.doesNotMatch(page, /@import|url\((?!#)/i);

  const dom = chromium(['--dump-dom', `file://${html}`]);
  const bars = dom.match(/<g class="bar" data-layer="\d+"/g) ?? [];
  assert.equal(bars.length, 4, 'one bar per layer');
  assert.equal((dom.match(/<g class="chain-node"/g) ?? []).length, 4, 'one chain node per layer');
  assert.equal((dom.match(/<rect class="waste"/g) ?? []).length, 1, 'the first RUN’s layer has waste');
  assert.match(dom, /merge-run/);
  assert.match(dom, /Dockerfile\.unchained:4/);
  assert.equal((dom.match(/<details class="layer"/g) ?? []).length, 4, 'a file tree per layer');

  const png = join(f.dir, 'shot.png');
  chromium(['--window-size=1280,1000', '--hide-scrollbars', `--screenshot=${png}`, `file://${html}`]);
  const { width, height, channels, pixels } = decodePng(readFileSync(png));
  assert.equal(width, 1280);
  assert.ok(height >= 900);
  const colors = new Set<number>();
  let nonWhite = 0;
  let red = 0;
  let blue = 0;
  for (let i = 0; i + 2 < pixels.length; i += channels) {
    const [R, G, B] = [pixels[i]!, pixels[i + 1]!, pixels[i + 2]!];
    colors.add((R << 16) | (G << 8) | B);
    if (R < 245 || G < 245 || B < 245) nonWhite++;
    if (R > 200 && G < 100 && B < 90) red++;
    if (R < 90 && G > 100 && B > 190) blue++;
  }
  assert.ok(colors.size > 20, `the screenshot has ${colors.size} colors`);
  assert.ok(nonWhite / (width * height) > 0.01, 'the screenshot is not blank');
  assert.ok(red > 500, `the waste bar is drawn (${red} red pixels)`);
  assert.ok(blue > 200, `the kept bytes are drawn (${blue} blue pixels)`);
});
