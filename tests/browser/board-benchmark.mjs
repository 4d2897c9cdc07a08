// The decision board's first paint with many decisions: sends BOARD_TICKETS tickets (10,000 by
// default) through the real pipeline of the real binary, waits until every one is decided, then
// reloads the board in headless Chromium five times and prints the median time from navigation to
// the first rows painted, beside the /v1/board answer time. A figure, not a pass/fail test: too
// slow for scripts/test.sh on a 2-core machine, so run it alone (scripts/bench-board.sh).
//
// BOARD_EMBEDDER=none (the default here) routes on BM25 and the classifier without the sentence
// model, so the tickets are decided faster; the board's work does not depend on how they were.

import { chromium } from 'playwright-core';
import { start, login } from './lib/server.mjs';

const TICKETS = Number(process.env.BOARD_TICKETS ?? 10_000);
const CONCURRENCY = 16;
const TEXTS = [
  '公司电脑的打印机驱动装不上，一直报错，没法打印合同。',
  '输对密码进不去，登录一直提示密码错误，账号会不会被锁？',
  'VPN keeps dropping every few minutes since this morning',
  '社保卡丢了，怎么补办？需要带什么材料？',
  'My invoice shows a charge twice this month, please refund one',
  '公积金提取申请提交后一直没有审核结果',
];

function log(message) {
  console.log(`board benchmark: ${message}`);
}

async function main() {
  const server = await start({ settings: { SWITCHBOARD__EMBEDDER__KIND: process.env.BOARD_EMBEDDER ?? 'none' } });
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const admin = await login(server.base, 'admin', server.password);
    const token = (await admin('/v1/tokens', { method: 'POST', body: { name: 'bench', role: 'connector' } })).token;
    const started = Date.now();
    let next = 0;
    async function sender() {
      while (next < TICKETS) {
        const i = next++;
        const response = await fetch(`${server.base}/v1/tickets`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ text: `${TEXTS[i % TEXTS.length]} #${i}`, channel: ['web', 'email', 'wecom'][i % 3] }),
        });
        if (response.status !== 202) throw new Error(`ticket ${i}: ${response.status} ${await response.text()}`);
        if (i % 1000 === 999) log(`${i + 1} sent after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, sender));
    for (;;) {
      const waiting = await admin('/v1/board?state=received&limit=1');
      if (waiting.matched === 0) break;
      await new Promise((r) => setTimeout(r, 2000));
    }
    const total = (await admin('/v1/board?limit=1')).matched;
    log(`${total} tickets decided after ${((Date.now() - started) / 1000).toFixed(0)} s`);

    const apiTimes = [];
    for (let i = 0; i < 5; i += 1) {
      const t0 = performance.now();
      await admin('/v1/board?limit=50');
      apiTimes.push(performance.now() - t0);
    }

    const page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
    await page.goto(`${server.base}/console/`);
    await page.fill('#login-name', 'admin');
    await page.fill('#login-password', server.password);
    await page.click('#login-submit');
    await page.locator('#board-rows tr').first().waitFor();
    const paints = [];
    for (let i = 0; i < 5; i += 1) {
      await page.reload();
      await page.locator('#screen[data-painted="true"]').waitFor({ timeout: 120_000 });
      paints.push(await page.evaluate(() => performance.getEntriesByName('board:rows-painted')[0].startTime));
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    log(`with ${total} decisions: board first paint median ${median(paints).toFixed(0)} ms (runs: ${paints.map((p) => p.toFixed(0)).join(', ')}); GET /v1/board?limit=50 median ${median(apiTimes).toFixed(0)} ms`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
