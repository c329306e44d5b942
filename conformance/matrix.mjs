// What conformance/run runs, and the tables it prints from the results.
//
//   node conformance/matrix.mjs client-scenarios REVISION
//       the client scenarios of a revision the shim plays: the revision's
//       required ones and its unscored ones that are not extensions, less
//       OAuth (auth/*), one per line
//   node conformance/matrix.mjs tables RESULTS_DIR
//       the markdown tables of a run (the README's, Conformance)
//
// RESULTS_DIR holds one directory per run label (see conformance/run), each
// with attempt-N/ (server runs) or <scenario>/attempt-N/ (client runs), the
// suite's checks.json per scenario inside, and `verdicts`: one
// "<label> <passed|FAILED>" line per run.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, 'package.json'));
const YAML = require('yaml');
const suiteDir = dirname(dirname(require.resolve('@modelcontextprotocol/conformance/package.json')));
const REVISIONS = ['2025-11-25', '2026-07-28'];

function requirements(revision) {
  const file = join(suiteDir, 'conformance', 'requirements', `${revision}.yaml`);
  const doc = YAML.parse(readFileSync(file, 'utf8'));
  const notScored = (leg) =>
    (doc.not_scored ?? []).filter((entry) => entry.leg === leg);
  return {
    server: doc.server ?? [],
    client: doc.client ?? [],
    notScoredServer: notScored('server').map((entry) => entry.scenario),
    notScoredClient: notScored('client'),
  };
}

function clientScenarios(revision) {
  const req = requirements(revision);
  const unscored = req.notScoredClient
    .filter((entry) => entry.reason !== 'extension')
    .map((entry) => entry.scenario);
  return [...req.client, ...unscored].filter((name) => !name.startsWith('auth/'));
}

// --- results -------------------------------------------------------------------

const dirs = (dir) =>
  existsSync(dir) ? readdirSync(dir).filter((name) => statSync(join(dir, name)).isDirectory()) : [];
const lastAttempt = (dir) =>
  dirs(dir)
    .filter((name) => /^attempt-\d+$/.test(name))
    .sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]))
    .pop();
const stamp = /-\d{4}-\d{2}-\d{2}T[\d-]+Z$/;

// { scenario: [checks] } of a server run's last attempt.
function serverRun(dir) {
  const attempt = lastAttempt(dir);
  const out = {};
  if (!attempt) return out;
  for (const name of dirs(join(dir, attempt))) {
    const file = join(dir, attempt, name, 'checks.json');
    if (existsSync(file)) out[name.replace(/^server-/, '').replace(stamp, '')] = JSON.parse(readFileSync(file, 'utf8'));
  }
  return out;
}

// { scenario: [checks] } of a client run (last attempt of each scenario).
function clientRun(dir) {
  const out = {};
  for (const scenario of dirs(dir)) {
    const attempt = lastAttempt(join(dir, scenario));
    if (!attempt) continue;
    for (const name of dirs(join(dir, scenario, attempt))) {
      const file = join(dir, scenario, attempt, name, 'checks.json');
      if (existsSync(file)) out[scenario] = JSON.parse(readFileSync(file, 'utf8'));
    }
  }
  return out;
}

const failing = (checks) => checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING');
const count = (checks, status) => checks.filter((c) => c.status === status).length;

// The scenarios (and scenario:check entries) of a run's baseline.
function baseline(label, leg) {
  const file = join(here, 'expected-failures', `${label}.yml`);
  if (!existsSync(file)) return [];
  return YAML.parse(readFileSync(file, 'utf8'))?.[leg] ?? [];
}
const baselined = (entries, scenario) =>
  entries.some((entry) => entry === scenario || entry.startsWith(`${scenario}:`));

// --- tables --------------------------------------------------------------------

const SERVER_GROUPS = [
  ['lifecycle, transport, caching', /^(server-|ping$|dns-rebinding|caching$)/],
  ['tools', /^tools-(list|call-(simple-text|image|audio|embedded-resource|mixed-content|error|with-progress|with-logging))$/],
  ['input: sampling, elicitation, input-required results', /^(tools-call-(sampling|elicitation)|elicitation-|input-required-result-)/],
  ['resources', /^(resources-|sep-2164-)/],
  ['prompts, completion, logging', /^(prompts-|completion-|logging-)/],
];

function groupOf(scenario) {
  for (const [group, pattern] of SERVER_GROUPS) if (pattern.test(scenario)) return group;
  return 'other';
}

// "passed/run" of the scenarios of a group, and whether the failures are
// in the run's baseline (`scored`: unscored ones never count).
function cell(run, scenarios, entries, scored) {
  if (!run) return '—';
  const ran = scenarios.filter((s) => run[s]);
  if (ran.length === 0) return '—';
  const failed = ran.filter((s) => failing(run[s]).length > 0);
  let text = `${ran.length - failed.length}/${ran.length}`;
  if (!scored) return text;
  const expected = failed.filter((s) => baselined(entries, s)).length;
  const unexpected = failed.length - expected;
  const notes = [];
  if (expected) notes.push(`${expected} expected`);
  if (unexpected) notes.push(`**${unexpected} unexpected**`);
  if (notes.length) text += ` (${notes.join(', ')})`;
  return text;
}

function tables(results) {
  const verdicts = Object.fromEntries(
    readFileSync(join(results, 'verdicts'), 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(' ')),
  );
  const lines = [];
  const row = (cells) => lines.push(`| ${cells.join(' | ')} |`);

  // 1. Server scenarios: the suite is the client; the gateway's client side.
  lines.push('Server scenarios (the suite is the client): scenarios passed per group, each run held to its baseline');
  lines.push('');
  row(['client revision', 'upstream', 'scenario group', 'direct', 'gateway /servers/{name}/mcp', 'gateway /mcp']);
  row(['---', '---', '---', '---', '---', '---']);
  const pairings = [
    ['2025-11-25', 'dual-era', 'direct-2025-11-25', 'gateway-2025-11-25', 'gateway-mcp-2025-11-25'],
    ['2025-11-25', '2025-only', 'direct-legacy-2025-11-25', 'gateway-legacy-2025-11-25', 'gateway-mcp-legacy-2025-11-25'],
    ['2026-07-28', 'dual-era', 'direct-2026-07-28', 'gateway-2026-07-28', 'gateway-mcp-2026-07-28'],
    ['2026-07-28', '2025-only', null, 'gateway-legacy-2026-07-28', 'gateway-mcp-legacy-2026-07-28'],
    ['2025-11-25', '2025-only, asks on its GET stream', 'direct-unrelated-2025-11-25', 'gateway-unrelated-2025-11-25', 'gateway-mcp-unrelated-2025-11-25'],
    ['2026-07-28', '2025-only, asks on its GET stream', null, 'gateway-unrelated-2026-07-28', 'gateway-mcp-unrelated-2026-07-28'],
  ];
  for (const [revision, upstream, ...labels] of pairings) {
    const req = requirements(revision);
    const runs = labels.map((label) => (label && verdicts[label] ? serverRun(join(results, label)) : null));
    const entries = labels.map((label) => (label ? baseline(label, 'server') : []));
    const groups = new Map([...SERVER_GROUPS.map(([group]) => [group, []]), ['other', []]]);
    for (const scenario of req.server) groups.get(groupOf(scenario)).push(scenario);
    for (const [group, scenarios] of groups) {
      if (scenarios.length === 0) continue;
      row([revision, upstream, `${group} (${scenarios.length})`, ...runs.map((run, i) => cell(run, scenarios, entries[i], true))]);
    }
    const unscored = req.notScoredServer;
    row([revision, upstream, `not scored: extensions, pending (${unscored.length})`, ...runs.map((run, i) => cell(run, unscored, entries[i], false))]);
  }
  lines.push('');
  lines.push('"—": not run (a 2025-only server passes no 2026-07-28 scenario by itself). "expected": failing scenarios listed, with the reason, in the run\'s expected-failures file. Not-scored scenarios (the tasks extension, the pending ones) run for visibility, fail on the upstream alone too, and never decide a verdict.');
  lines.push('');

  // 2. Client scenarios: the suite is the upstream; the gateway's upstream side.
  lines.push('Client scenarios (the suite is the upstream server; through the gateway, the gateway is its client): checks passed');
  lines.push('');
  const vias = [
    ['direct', null],
    ['servers', '2025-11-25'],
    ['servers', '2026-07-28'],
    ['mcp', '2025-11-25'],
    ['mcp', '2026-07-28'],
  ];
  row([
    'scenario',
    'upstream revision',
    'direct (same-revision client)',
    '/servers/up/mcp, 2025-11-25 client',
    '/servers/up/mcp, 2026-07-28 client',
    '/mcp, 2025-11-25 client',
    '/mcp, 2026-07-28 client',
  ]);
  row(['---', '---', '---', '---', '---', '---', '---']);
  for (const revision of REVISIONS) {
    const labels = vias.map(([via, client]) =>
      via === 'direct' ? `client-direct-${revision}` : `client-${via}-${client}-to-${revision}`,
    );
    const runs = labels.map((label) => (verdicts[label] ? clientRun(join(results, label)) : null));
    for (const scenario of clientScenarios(revision)) {
      row([
        scenario,
        revision,
        ...runs.map((run, i) => {
          const checks = run?.[scenario];
          if (!checks) return '—';
          const scored = count(checks, 'SUCCESS') + count(checks, 'FAILURE') + count(checks, 'WARNING');
          const bad = failing(checks).length;
          if (bad === 0) return `✓ ${scored}/${scored}`;
          const expected = baselined(baseline(labels[i], 'client'), scenario);
          return `✗ ${scored - bad}/${scored}${expected ? ' (expected)' : ' (**unexpected**)'}`;
        }),
      ]);
    }
  }
  lines.push('');

  // 3. Every run: the suite's totals and the verdict against its baseline.
  lines.push('Runs (last attempt of each; checks include unscored scenarios)');
  lines.push('');
  row(['run', 'suite plays', 'client revision', 'upstream', 'endpoint', 'checks passed', 'checks failed or warned', 'verdict']);
  row(['---', '---', '---', '---', '---', '---', '---', '---']);
  for (const label of Object.keys(verdicts).sort()) {
    let suite, client, upstream, endpoint, checks;
    const revision = label.match(/(\d{4}-\d{2}-\d{2})$/)[1];
    let m;
    if ((m = label.match(/^client-(direct|servers|mcp)-(?:(\d{4}-\d{2}-\d{2})-to-)?/))) {
      suite = 'server (client scenarios)';
      client = m[2] ?? revision;
      upstream = `suite, ${revision}`;
      endpoint = { direct: 'direct', servers: '/servers/up/mcp', mcp: '/mcp' }[m[1]];
      checks = Object.values(clientRun(join(results, label))).flat();
    } else {
      suite = 'client (server scenarios)';
      client = revision;
      upstream = /unrelated/.test(label)
        ? '2025-only, asks on its GET stream'
        : /legacy/.test(label)
          ? '2025-only'
          : /stateless/.test(label)
            ? 'dual-era, stateless'
            : 'dual-era';
      endpoint = label.startsWith('direct') ? 'direct' : label.startsWith('gateway-mcp') ? '/mcp' : '/servers/{name}/mcp';
      checks = Object.values(serverRun(join(results, label))).flat();
    }
    row([label, suite, client, upstream, endpoint, count(checks, 'SUCCESS'), count(checks, 'FAILURE') + count(checks, 'WARNING'), verdicts[label]]);
  }
  return lines.join('\n');
}

const [command, arg] = process.argv.slice(2);
if (command === 'client-scenarios' && REVISIONS.includes(arg)) {
  console.log(clientScenarios(arg).join('\n'));
} else if (command === 'tables' && arg) {
  console.log(tables(arg));
} else {
  console.error('usage: matrix.mjs client-scenarios REVISION | tables RESULTS_DIR');
  process.exit(2);
}
