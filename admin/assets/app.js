// The Pactum console (docs/console.md). Plain JavaScript, no dependencies, no build.
//
// Every element is built with createElement and text nodes: no string from the ledger
// (a proposal title, an organisation, an error) is ever parsed as HTML (ADR 0023). The
// admin service signs; this script only asks it to, with the session's CSRF token.

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let session = null;
let pollTimer = null;
let eventStream = null;

// ---- building blocks ----------------------------------------------------------------

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// Replaces `element`'s children; null, undefined and false stand for nothing.
function fill(element, ...children) {
  element.replaceChildren(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
}

function show(...children) {
  fill(main, ...children);
  main.focus({ preventScroll: true });
}

function message(kind, text) {
  return h('p', { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

function short(hex) {
  const text = String(hex ?? '');
  return text.length > 16 ? `${text.slice(0, 8)}…${text.slice(-6)}` : text;
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return '';
  return new Date(Number(seconds) * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

function days(seconds) {
  return Math.floor(Number(seconds) / 86400);
}

function table(headings, rows) {
  return h('div', { class: 'scroll' },
    h('table', {},
      h('thead', {}, h('tr', {}, headings.map((heading) => h('th', { scope: 'col' }, heading)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', {}, cell)))))));
}

function card(label, value) {
  return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
}

class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `the service answered ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session) headers['X-CSRF-Token'] = session.csrf;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401 && path !== '/admin/api/login') {
    session = null;
    showLogin();
    throw new ApiFailure(401, data);
  }
  if (!response.ok) throw new ApiFailure(response.status, data);
  return data;
}

const node = (path) => api('GET', `/admin/api/node/v1/${path}`);

// ---- login and chrome ---------------------------------------------------------------

function showLogin(problem) {
  nav.hidden = true;
  document.getElementById('who').textContent = '';
  const token = h('input', { id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { class: 'panel login', onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api('POST', '/admin/api/login', { token: token.value.trim() });
      await start();
    } catch (error) {
      showLogin(error.message);
    }
  } },
  h('h1', {}, 'Log in'),
  h('label', { for: 'token' }, 'Login token', h('span', { class: 'hint' }, 'printed by pactum admin serve (and pactum devnet up), or in the service\'s login-token file; each token logs in once')),
  token,
  h('button', { type: 'submit' }, 'Log in'),
  problem ? message('error', problem) : null);
  show(form);
  token.focus();
}

async function start() {
  session = await api('GET', '/admin/api/session');
  nav.hidden = false;
  const who = session.organisation
    ? `${session.organisation} · admin ${short(session.admin_key)}`
    : `admin key ${short(session.admin_key)} is not enrolled`;
  document.getElementById('who').textContent = who;
  refreshBadge();
  route();
}

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('POST', '/admin/api/logout', {}); } catch (_) { /* logged out anyway */ }
  session = null;
  showLogin();
});

const menu = document.getElementById('menu');
menu.addEventListener('click', () => {
  const open = nav.classList.toggle('closed') === false;
  menu.setAttribute('aria-expanded', String(open));
});

async function waitingProposals() {
  const open = await node('proposals?status=open');
  return (open.proposals || []).filter((proposal) =>
    !(proposal.votes || []).some((vote) => vote.organisation === session.organisation));
}

async function refreshBadge() {
  if (!session) return;
  try {
    const waiting = await waitingProposals();
    const badge = document.getElementById('badge');
    badge.hidden = waiting.length === 0;
    badge.textContent = String(waiting.length);
    badge.setAttribute('aria-label', `${waiting.length} waiting for ${session.organisation}`);
  } catch (_) { /* the next refresh tries again */ }
}
setInterval(refreshBadge, 3000);

// ---- routing ------------------------------------------------------------------------

const routes = [
  [/^#\/overview$/, overview],
  [/^#\/proposals$/, proposals],
  [/^#\/proposals\/([0-9a-f]{64})$/, proposal],
  [/^#\/new$/, newProposal],
  [/^#\/new\/([a-z_]+)$/, wizard],
  [/^#\/members$/, members],
  [/^#\/identities$/, identitiesPage],
  [/^#\/contracts$/, contractsPage],
  [/^#\/supply-chain$/, supplyChainPage],
  [/^#\/healthcare$/, healthcarePage],
  [/^#\/explorer$/, explorer],
  [/^#\/explorer\/block\/([0-9]+)$/, block],
  [/^#\/explorer\/transaction\/([0-9a-f]{64})$/, transaction],
  [/^#\/explorer\/account\/([0-9a-f]{64})$/, account],
  [/^#\/explorer\/contract\/([0-9a-f]{64})$/, contract],
  [/^#\/audit$/, audit],
];

async function route() {
  if (!session) return;
  clearInterval(pollTimer);
  if (eventStream) { eventStream.close(); eventStream = null; }
  const hash = location.hash || '#/overview';
  for (const link of nav.querySelectorAll('a')) {
    const target = link.getAttribute('href');
    const exact = [...nav.querySelectorAll('a')].some((other) => other.getAttribute('href') === hash);
    const current = exact ? hash === target : hash.startsWith(`${target}/`);
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
  for (const [pattern, page] of routes) {
    const match = hash.match(pattern);
    if (match) {
      try {
        await page(...match.slice(1));
      } catch (error) {
        if (!(error instanceof ApiFailure && error.status === 401)) show(h('h1', {}, 'Something went wrong'), message('error', error.message));
      }
      return;
    }
  }
  show(h('h1', {}, 'Not found'), h('p', {}, 'No such page. ', h('a', { href: '#/overview' }, 'Overview')));
}
window.addEventListener('hashchange', route);

// ---- overview -----------------------------------------------------------------------

const history = [];

function chart(canvas, points, label) {
  const context = canvas.getContext('2d');
  const width = canvas.width = canvas.clientWidth * devicePixelRatio;
  const height = canvas.height = canvas.clientHeight * devicePixelRatio;
  context.clearRect(0, 0, width, height);
  context.fillStyle = '#5b6475';
  context.font = `${12 * devicePixelRatio}px system-ui`;
  const values = points.filter((value) => Number.isFinite(value));
  const top = Math.max(1e-9, ...values);
  context.fillText(`${label} (max ${values.length ? top.toFixed(2) : '–'})`, 8 * devicePixelRatio, 16 * devicePixelRatio);
  context.strokeStyle = '#1f5fbf';
  context.lineWidth = 2 * devicePixelRatio;
  context.beginPath();
  points.forEach((value, index) => {
    if (!Number.isFinite(value)) return;
    const x = (index / Math.max(1, points.length - 1)) * (width - 16 * devicePixelRatio) + 8 * devicePixelRatio;
    const y = height - 8 * devicePixelRatio - (value / top) * (height - 32 * devicePixelRatio);
    if (index === 0) context.moveTo(x, y); else context.lineTo(x, y);
  });
  context.stroke();
}

async function overview() {
  const rate = h('canvas', { role: 'img', 'aria-label': 'Blocks committed per second' });
  const latency = h('canvas', { role: 'img', 'aria-label': 'Mean commit latency in seconds' });
  const body = h('div', {}, message('ok', 'Loading…'));
  show(h('h1', {}, 'Overview'), body, h('h2', {}, 'Commit rate and latency'), h('div', { class: 'charts' }, rate, latency));
  const draw = async () => {
    const data = await api('GET', '/admin/api/overview');
    const status = data.node;
    const now = Date.now() / 1000;
    history.push({ now, height: status.height, sum: data.commit_latency.sum_seconds, count: data.commit_latency.count });
    while (history.length > 60) history.shift();
    const rates = history.slice(1).map((point, index) => (point.height - history[index].height) / Math.max(0.001, point.now - history[index].now));
    const latencies = history.slice(1).map((point, index) => {
      const count = point.count - history[index].count;
      return count > 0 ? (point.sum - history[index].sum) / count : NaN;
    });
    const expiring = (status.certificates || []).filter((certificate) => certificate.seconds_left < 30 * 86400);
    const waiting = data.waiting_for_us || [];
    fill(body, 
      h('div', { class: 'cards' },
        card('Height', status.height),
        card('Epoch', status.epoch),
        card('View', status.view),
        card('Primary', status.primary ?? '–'),
        card('n / f / quorum', `${status.n} / ${status.f} / ${status.quorum}`),
        card('Waiting for you', waiting.length)),
      waiting.length ? h('div', { class: 'panel' }, h('h2', {}, 'Proposals waiting for your vote'),
        h('ul', {}, waiting.map((proposal) => h('li', {}, h('a', { href: `#/proposals/${proposal.id}` }, proposal.title))))) : null,
      (status.warnings || []).map((warning) => message('error', warning)),
      h('h2', {}, 'Validators'),
      table(['Validator', 'Organisation', 'Replica', 'Votes', 'Reachable', 'Height', 'Lag', 'Epoch', 'View'],
        data.validators.map((validator) => [
          validator.name + (validator.primary ? ' (primary)' : ''),
          validator.organisation,
          String(validator.index),
          validator.voting ? 'yes' : 'joining',
          validator.reachable ? h('span', { class: 'good' }, 'yes') : h('span', { class: 'bad', title: validator.error || '' }, 'no'),
          validator.height ?? '–',
          validator.lag ?? '–',
          validator.epoch ?? '–',
          validator.view ?? '–',
        ])),
      data.planned_epoch ? h('p', { class: 'message' }, `An epoch change is planned: ${data.planned_epoch.validators.length} validators`,
        data.planned_epoch.last !== null ? `, from height ${data.planned_epoch.last + 1}` : `, waiting for ${data.planned_epoch.waiting.length} new validators to be ready`) : null,
      h('h2', {}, 'Certificates expiring within 30 days'),
      expiring.length ? table(['Kind', 'Name', 'Organisation', 'Expires', 'Days left'],
        expiring.map((certificate) => [certificate.kind, certificate.name, certificate.organisation, when(certificate.not_after), days(certificate.seconds_left)]))
        : h('p', { class: 'muted' }, 'None.'));
    chart(rate, rates, 'Blocks per second');
    chart(latency, latencies, 'Mean commit latency, s');
  };
  await draw();
  pollTimer = setInterval(() => { draw().catch(() => {}); }, 2000);
}

// ---- proposals ----------------------------------------------------------------------

function statusBadge(status) {
  return h('span', { class: `status ${status}` }, status);
}

async function proposals() {
  const list = h('div', {}, message('ok', 'Loading…'));
  const filter = h('select', { id: 'status-filter', onchange: () => load() },
    ['all', 'open', 'applied', 'rejected', 'expired', 'withdrawn', 'failed'].map((status) => h('option', { value: status }, status)));
  show(h('h1', {}, 'Proposals'),
    h('div', { class: 'row' }, h('label', { for: 'status-filter' }, 'Status'), filter, h('a', { href: '#/new' }, 'New proposal')),
    list);
  const load = async () => {
    const query = filter.value === 'all' ? 'proposals' : `proposals?status=${filter.value}`;
    const data = await node(query);
    const rows = (data.proposals || []).map((item) => [
      h('a', { href: `#/proposals/${item.id}` }, item.title),
      item.organisation,
      statusBadge(item.status),
      (item.votes || []).map((vote) => `${vote.organisation}: ${vote.approve ? 'approve' : 'reject'}`).join(', '),
      (item.votes || []).some((vote) => vote.organisation === session.organisation) || item.status !== 'open' ? '' : h('strong', {}, 'your vote'),
    ]);
    fill(list, rows.length ? table(['Title', 'Proposed by', 'Status', 'Votes', ''], rows) : h('p', { class: 'muted' }, 'No proposals.'));
  };
  await load();
}

function describeChange(change) {
  switch (change.change) {
    case 'add_member': return `Add member ${change.organisation}`;
    case 'remove_member': return `Remove member ${change.organisation}`;
    case 'update_member': return `Replace the CA certificates of ${change.organisation}`;
    case 'add_validator': return `Add validator ${change.validator.name} (${change.validator.network_address})`;
    case 'remove_validator': return `Remove validator ${short(change.validator)}`;
    case 'revoke_certificate': return `Revoke certificate ${change.serial} of ${change.organisation}`;
    case 'set_policy': return `Set the ${change.class} policy to ${describePolicy(change.policy)}`;
    case 'set_parameters': return 'Set the consensus and block parameters (next epoch)';
    case 'set_gas_schedule': return `Set the gas schedule to version ${change.schedule.version}`;
    case 'upgrade_contract': return `Upgrade contract ${short(change.contract)}`;
    case 'set_deploy_policy': return `Set the deploy policy to ${change.policy.rule}`;
    case 'approve_code': return `Approve code ${short(change.code_hash)}`;
    default: return change.change;
  }
}

function describePolicy(policy) {
  if (!policy) return '';
  if (policy.rule === 'at_least') return `at least ${policy.count} organisations`;
  if (policy.rule === 'more_than') return `more than ${policy.numerator}/${policy.denominator} of the organisations`;
  return 'every organisation';
}

// What differs between two versions of the configuration, one line each.
function differences(before, after) {
  const lines = [];
  const names = (list, key) => new Set((list || []).map((item) => item[key]));
  const compare = (what, a, b) => {
    for (const item of b) if (!a.has(item)) lines.push(`${what} added: ${item}`);
    for (const item of a) if (!b.has(item)) lines.push(`${what} removed: ${item}`);
  };
  compare('Member', names(before.members, 'name'), names(after.members, 'name'));
  const validators = (config) => names(config.planned_epoch ? config.planned_epoch.validators : config.validators, 'name');
  compare('Validator (next epoch)', validators(before), validators(after));
  for (const [klass, policy] of Object.entries(after.policies || {})) {
    if (JSON.stringify(policy) !== JSON.stringify((before.policies || {})[klass])) lines.push(`Policy ${klass}: ${describePolicy(policy)}`);
  }
  if ((after.revoked || []).length !== (before.revoked || []).length) lines.push(`Revoked certificates: ${(before.revoked || []).length} → ${(after.revoked || []).length}`);
  const parameters = (config) => (config.planned_epoch ? config.planned_epoch.parameters : config.parameters) || {};
  for (const [name, value] of Object.entries(parameters(after))) {
    if (parameters(before)[name] !== value) lines.push(`Parameter ${name}: ${parameters(before)[name]} → ${value}`);
  }
  if ((after.gas_schedule || {}).version !== (before.gas_schedule || {}).version) lines.push(`Gas schedule: version ${(before.gas_schedule || {}).version} → ${(after.gas_schedule || {}).version}`);
  if (after.epoch !== before.epoch) lines.push(`Epoch: ${before.epoch} → ${after.epoch}`);
  return lines;
}

async function proposal(id) {
  const item = await node(`proposals/${id}`);
  const voted = (item.votes || []).some((vote) => vote.organisation === session.organisation);
  const outcome = h('div', {});
  const act = (vote) => async (event) => {
    event.target.disabled = true;
    try {
      const result = await api('POST', `/admin/api/proposals/${id}/${vote}`, {});
      refreshBadge();
      // The page again, with the vote in it, and what became of it.
      await proposal(id);
      main.querySelector('h1').after(message(result.outcome === 'ok' ? 'ok' : 'error', `${vote}: ${result.outcome} (transaction ${short(result.transaction)})`));
    } catch (error) {
      event.target.disabled = false;
      fill(outcome, message('error', error.message));
    }
  };
  const actions = item.status === 'open' ? h('div', { class: 'row' },
    voted ? null : h('button', { type: 'button', onclick: act('approve') }, 'Approve'),
    voted ? null : h('button', { type: 'button', class: 'danger', onclick: act('reject') }, 'Reject'),
    item.organisation === session.organisation ? h('button', { type: 'button', class: 'secondary', onclick: act('withdraw') }, 'Withdraw') : null) : null;
  const timeline = [h('li', {}, `Proposed by ${item.organisation} at height ${item.opened_at_height}`)];
  for (const vote of item.votes || []) timeline.push(h('li', {}, `${vote.organisation} ${vote.approve ? 'approved' : 'rejected'} at height ${vote.height} (transaction ${short(vote.transaction)})`));
  if (item.status !== 'open') timeline.push(h('li', {}, `${item.status} at height ${item.status_height ?? '?'}`));
  const diff = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  show(
    h('h1', {}, item.title),
    h('dl', { class: 'pairs panel' },
      h('dt', {}, 'Status'), h('dd', {}, statusBadge(item.status)),
      h('dt', {}, 'Proposed by'), h('dd', {}, item.organisation),
      h('dt', {}, 'Id'), h('dd', { class: 'mono' }, item.id),
      h('dt', {}, 'Expires at height'), h('dd', {}, item.expires_at_height),
      item.description ? [h('dt', {}, 'Description'), h('dd', {}, item.description)] : null,
      item.failure_reason ? [h('dt', {}, 'Failure reason'), h('dd', { class: 'bad' }, item.failure_reason)] : null),
    actions, outcome,
    h('h2', {}, 'Changes'), h('ol', {}, (item.changes || []).map((change) => h('li', {}, describeChange(change)))),
    h('h2', {}, 'Votes'),
    table(['Organisation', 'Vote', 'Height', 'Transaction'], (item.votes || []).map((vote) => [vote.organisation, vote.approve ? 'approve' : 'reject', vote.height, h('span', { class: 'mono', title: vote.transaction }, short(vote.transaction))])),
    h('h2', {}, 'Timeline'), h('ul', { class: 'timeline' }, timeline),
    h('h2', {}, 'Before and after'), diff);
  if (item.status === 'applied' && item.status_height) {
    const before = await node(`consortium?height=${item.status_height}`);
    const after = await node(`consortium?height=${item.status_height + 1}`).catch(() => node('consortium'));
    const lines = differences(before, after);
    fill(diff, h('p', {}, `Applied at the end of block ${item.status_height}; in force from block ${item.status_height + 1}.`),
      lines.length ? h('ul', {}, lines.map((line) => h('li', {}, line))) : h('p', { class: 'muted' }, 'No difference in members, validators, policies or parameters.'));
  } else if (item.status === 'open') {
    const check = await api('POST', '/admin/api/wizard', { kind: 'changes', changes: item.changes });
    fill(diff, dryRunView(check.dry_run));
  } else {
    fill(diff, h('p', { class: 'muted' }, 'Nothing changed.'));
  }
}

// ---- new proposals: wizards with a dry run -----------------------------------------

const wizards = {
  onboard: {
    title: 'Onboard an organisation',
    help: 'Choose the files the new organisation sent: its CA certificate (PEM) and the join request of each of its validators (pactum certs join-request). The dry run runs as soon as they are read.',
    fields: [{ name: 'files', label: 'Files', type: 'files' }],
    build: (values) => ({ kind: 'onboard', ca_certificate_pem: values.pem, join_requests: values.json }),
    defaultTitle: (changes) => `Onboard ${changes[0].organisation}`,
  },
  add_validator: {
    title: 'Add a validator',
    help: 'The validator\'s join request (pactum certs join-request), of a member organisation.',
    fields: [{ name: 'join_request', label: 'Join request (JSON)', type: 'textarea' }],
    build: (values) => ({ kind: 'add_validator', join_request: values.join_request }),
  },
  remove_validator: {
    title: 'Remove a validator',
    fields: [{ name: 'public_key', label: 'Validator', type: 'validator' }],
    build: (values) => ({ kind: 'remove_validator', public_key: values.public_key }),
  },
  rotate_key: {
    title: 'Rotate a validator\'s key',
    help: 'Removes the validator, adds it again with the new key of the join request, and revokes its old certificate.',
    fields: [{ name: 'public_key', label: 'Validator', type: 'validator' }, { name: 'join_request', label: 'Join request with the new key (JSON)', type: 'textarea' }],
    build: (values) => ({ kind: 'rotate_key', public_key: values.public_key, join_request: values.join_request, revoke_old: true }),
  },
  revoke_certificate: {
    title: 'Revoke a certificate',
    fields: [{ name: 'certificate_pem', label: 'Certificate (PEM)', type: 'textarea' }],
    build: (values) => ({ kind: 'revoke_certificate', certificate_pem: values.certificate_pem }),
  },
  set_policy: {
    title: 'Change an approval policy',
    fields: [
      { name: 'class', label: 'Class of change', type: 'select', options: ['membership', 'validators', 'certificates', 'policies', 'contracts', 'parameters'] },
      { name: 'rule', label: 'Rule', type: 'select', options: ['at_least', 'more_than', 'all'] },
      { name: 'count', label: 'At least (count)', type: 'number', value: '3' },
      { name: 'fraction', label: 'More than (numerator/denominator)', type: 'text', value: '1/2' },
    ],
    build: (values) => {
      const [numerator, denominator] = values.fraction.split('/').map(Number);
      const policy = values.rule === 'at_least' ? { rule: 'at_least', count: Number(values.count) }
        : values.rule === 'more_than' ? { rule: 'more_than', numerator, denominator } : { rule: 'all' };
      return { kind: 'set_policy', class: values.class, policy };
    },
  },
  set_parameters: {
    title: 'Change consensus or block parameters',
    help: 'One NAME=VALUE per line, for example block_gas_max=500000000; the others stay as they are. They take effect at the next epoch boundary.',
    fields: [{ name: 'settings', label: 'Settings', type: 'textarea' }],
    build: (values) => ({ kind: 'set_parameters', settings: settings(values.settings) }),
  },
  set_gas_schedule: {
    title: 'Change the gas schedule',
    help: 'One NAME=VALUE per line, for example call_base=3000; the version goes up by one. It applies from the block after the proposal.',
    fields: [{ name: 'settings', label: 'Settings', type: 'textarea' }],
    build: (values) => ({ kind: 'set_gas_schedule', settings: settings(values.settings) }),
  },
  approve_code: {
    title: 'Approve a contract for deployment',
    help: 'Under the by-proposal deploy policy only code a proposal approved may be deployed. Choose the .wasm module; the proposal names its SHA3-256 hash, and once applied anyone enrolled may deploy exactly that code.',
    fields: [{ name: 'code', label: 'WebAssembly module', type: 'wasm' }],
    build: (values) => ({ kind: 'approve_code', code: values.code }),
  },
  upgrade_contract: {
    title: 'Upgrade a contract',
    help: 'Replaces a deployed contract\'s code with the chosen module; its address and state stay.',
    fields: [{ name: 'contract', label: 'Contract', type: 'contract' }, { name: 'code', label: 'New WebAssembly module', type: 'wasm' }],
    build: (values) => ({ kind: 'upgrade_contract', contract: values.contract, code: values.code }),
  },
  set_deploy_policy: {
    title: 'Change who may deploy contracts',
    fields: [
      { name: 'rule', label: 'Rule', type: 'select', options: ['open', 'organisations', 'by_proposal'] },
      { name: 'organisations', label: 'Organisations (one per line, for the organisations rule)', type: 'textarea' },
    ],
    build: (values) => ({
      kind: 'set_deploy_policy',
      policy: values.rule === 'organisations' ? { rule: 'organisations', organisations: lines(values.organisations) } : { rule: values.rule },
    }),
  },
  changes: {
    title: 'Changes as JSON',
    help: 'A JSON array of changes, as pactum gov propose --changes takes them (docs/governance.md).',
    fields: [{ name: 'changes', label: 'Changes (JSON)', type: 'textarea' }],
    build: (values) => ({ kind: 'changes', changes: JSON.parse(values.changes) }),
  },
};

function settings(text) {
  return text.split('\n').map((line) => line.trim()).filter(Boolean).map((line) => {
    const [name, value] = line.split('=');
    if (value === undefined || !/^[0-9_]+$/.test(value.trim())) throw new Error(`${line}: write NAME=VALUE with a whole number`);
    return [name.trim(), Number(value.trim().replaceAll('_', ''))];
  });
}

function newProposal() {
  show(h('h1', {}, 'New proposal'), h('p', {}, 'Choose what to change. Each wizard checks the proposal against the configuration in force (a dry run) before you sign it.'),
    h('ul', {}, Object.entries(wizards).map(([kind, spec]) => h('li', {}, h('a', { href: `#/new/${kind}` }, spec.title)))));
}

function dryRunView(dry) {
  if (!dry) return message('error', 'No dry run.');
  const size = (side) => side ? `${side.members} members, n = ${side.n}, f = ${side.f}, quorum ${side.quorum}` : '–';
  return h('div', { class: 'panel', id: 'dry-run' },
    dry.valid ? message('ok', `Valid: it needs ${dry.approvals_needed} of ${dry.voters} organisations' approvals.`) : message('error', `Refused: ${dry.reason}`),
    h('dl', { class: 'pairs' }, h('dt', {}, 'Before'), h('dd', {}, size(dry.before)), h('dt', {}, 'After'), h('dd', {}, size(dry.after))),
    h('ol', {}, (dry.checks || []).map((check) => h('li', {}, `${check.change}: `, check.reason ? h('span', { class: 'bad' }, check.reason) : h('span', { class: 'good' }, 'ok')))));
}

async function wizard(kind) {
  const spec = wizards[kind];
  if (!spec) { show(h('h1', {}, 'No such wizard'), h('a', { href: '#/new' }, 'New proposal')); return; }
  const values = {};
  const inputs = [];
  const title = h('input', { id: 'title', name: 'title', required: true, maxlength: 200 });
  const description = h('textarea', { id: 'description', name: 'description' });
  const check = h('div', { 'aria-live': 'polite' });
  const outcome = h('div', { 'aria-live': 'polite' });
  const sign = h('button', { type: 'submit', id: 'sign', disabled: true }, 'Sign and propose');
  let checked = null;
  const consortium = await node('consortium');
  const needsContracts = spec.fields.some((field) => field.type === 'contract');
  const deployed = needsContracts ? ((await node('contracts?limit=100')).contracts || []) : [];

  const runCheck = async () => {
    checked = null;
    sign.disabled = true;
    try {
      for (const input of inputs) if (input.type !== 'file') values[input.name] = input.value;
      const result = await api('POST', '/admin/api/wizard', spec.build(values));
      checked = result.changes;
      if (!title.value && spec.defaultTitle) title.value = spec.defaultTitle(result.changes);
      fill(check, h('h2', {}, 'Dry run'), h('ol', {}, result.changes.map((change) => h('li', {}, describeChange(change)))), dryRunView(result.dry_run));
      sign.disabled = !(result.dry_run && result.dry_run.valid);
    } catch (error) {
      fill(check, message('error', error.message));
    }
  };

  const fields = spec.fields.map((field) => {
    const id = `field-${field.name}`;
    let input;
    if (field.type === 'files') {
      input = h('input', { id, name: 'files', type: 'file', multiple: true, accept: '.pem,.crt,.json,application/json' });
      input.addEventListener('change', async () => {
        values.pem = null; values.json = [];
        for (const file of input.files) {
          const text = await file.text();
          if (text.includes('-----BEGIN CERTIFICATE-----')) values.pem = text;
          else values.json.push(text);
        }
        if (!values.pem) { fill(check, message('error', 'None of the files is a PEM CA certificate.')); return; }
        if (!values.json.length) { fill(check, message('error', 'None of the files is a join request.')); return; }
        await runCheck();
      });
    } else if (field.type === 'wasm') {
      input = h('input', { id, name: field.name, type: 'file', accept: '.wasm,application/wasm' });
      input.addEventListener('change', async () => {
        const bytes = new Uint8Array(await input.files[0].arrayBuffer());
        values[field.name] = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
        await runCheck();
      });
    } else if (field.type === 'contract') {
      input = h('select', { id, name: field.name }, deployed.map((item) => h('option', { value: item.address }, item.address)));
    } else if (field.type === 'textarea') {
      input = h('textarea', { id, name: field.name });
    } else if (field.type === 'select') {
      input = h('select', { id, name: field.name }, field.options.map((option) => h('option', { value: option }, option)));
    } else if (field.type === 'validator') {
      input = h('select', { id, name: field.name }, (consortium.validators || []).map((validator) =>
        h('option', { value: validator.public_key }, `${validator.name} (${validator.organisation}, replica ${validator.index})`)));
    } else {
      input = h('input', { id, name: field.name, type: field.type, value: field.value || '' });
    }
    inputs.push(input);
    return h('label', { for: id }, field.label, input);
  });
  const checkButton = spec.fields.some((field) => field.type === 'files') ? null
    : h('button', { type: 'button', class: 'secondary', id: 'check', onclick: runCheck }, 'Check (dry run)');
  const form = h('form', { onsubmit: async (event) => {
    event.preventDefault();
    if (!checked) return;
    sign.disabled = true;
    try {
      const result = await api('POST', '/admin/api/proposals', { title: title.value, description: description.value, changes: checked });
      fill(outcome, message(result.outcome === 'ok' ? 'ok' : 'error', `Proposed: ${result.outcome}. `),
        h('a', { href: `#/proposals/${result.transaction}`, id: 'proposal-link' }, 'Open the proposal'));
      refreshBadge();
    } catch (error) {
      sign.disabled = false;
      fill(outcome, message('error', error.message));
    }
  } },
  spec.help ? h('p', {}, spec.help) : null,
  fields,
  checkButton,
  check,
  h('label', { for: 'title' }, 'Title', title),
  h('label', { for: 'description' }, 'Description', h('span', { class: 'hint' }, 'optional'), description),
  h('div', { class: 'row' }, sign),
  outcome);
  show(h('h1', {}, spec.title), form);
}

// ---- members, validators, certificates ---------------------------------------------

async function members() {
  const config = await node('consortium');
  const status = await node('status');
  const now = Date.now() / 1000;
  const certificates = [];
  for (const member of config.members || []) for (const certificate of member.ca_certificates || []) certificates.push({ kind: 'CA', name: member.name, organisation: member.name, not_after: certificate.not_after });
  for (const validator of config.validators || []) certificates.push({ kind: 'validator', name: validator.name, organisation: validator.organisation, not_after: validator.certificate.not_after });
  certificates.sort((a, b) => a.not_after - b.not_after);
  const horizon = Math.max(...certificates.map((certificate) => certificate.not_after - now), 1);
  show(h('h1', {}, 'Members and certificates'),
    h('div', { class: 'cards' }, card('Version', config.version), card('Epoch', config.epoch), card('Members', (config.members || []).length), card('Validators', `${status.n} (f ${status.f})`)),
    h('h2', {}, 'Members'),
    table(['Organisation', 'CA certificates'], (config.members || []).map((member) => [member.name,
      (member.ca_certificates || []).map((certificate) => h('div', { class: 'mono' }, `serial ${certificate.serial}, until ${when(certificate.not_after)}`))])),
    h('h2', {}, 'Validators'),
    table(['Replica', 'Validator', 'Organisation', 'Peer address', 'API', 'Key'], (config.validators || []).map((validator) => [String(validator.index), validator.name, validator.organisation, validator.address, validator.api_address, h('span', { class: 'mono' }, short(validator.public_key))])),
    h('h2', {}, 'Policies'),
    table(['Class', 'Policy'], Object.entries(config.policies || {}).map(([klass, policy]) => [klass, describePolicy(policy)])),
    h('h2', {}, 'Certificate expiry'),
    table(['Certificate', 'Organisation', 'Expires', 'Days left', ''], certificates.map((certificate) => {
      const left = certificate.not_after - now;
      const kind = left < 7 * 86400 ? 'bad' : left < 30 * 86400 ? 'warn' : '';
      return [`${certificate.kind} ${certificate.name}`, certificate.organisation, when(certificate.not_after), days(left),
        h('div', { class: 'track', role: 'presentation' }, h('div', { class: `bar ${kind}`, 'data-width': Math.round((left / horizon) * 100) }))];
    })),
    h('h2', {}, 'Revoked certificates'),
    (config.revoked || []).length ? table(['Organisation', 'Serial'], config.revoked.map((entry) => [entry.organisation, h('span', { class: 'mono' }, entry.serial)])) : h('p', { class: 'muted' }, 'None.'));
  // Widths set through the CSSOM, which the Content-Security-Policy allows (no inline style attribute).
  for (const bar of main.querySelectorAll('.bar')) bar.style.width = `${Math.max(2, Number(bar.dataset.width))}%`;
}

// ---- identities ---------------------------------------------------------------------

async function identitiesPage() {
  const data = await api('GET', '/admin/api/identities');
  const name = h('input', { id: 'identity-name', name: 'name', required: true, pattern: '[a-z0-9\\-]{1,32}' });
  const certificate = h('textarea', { id: 'identity-certificate', name: 'certificate' });
  const key = h('textarea', { id: 'identity-key', name: 'key' });
  const outcome = h('div', { 'aria-live': 'polite' });
  const form = h('form', { onsubmit: async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    try {
      const result = await api('POST', '/admin/api/identities', { name: name.value.trim(), certificate_pem: certificate.value, private_key_pem: key.value });
      fill(outcome, message(result.outcome === 'ok' ? 'ok' : 'error', `Enrolled ${name.value}: ${result.outcome}`));
      // Show the new identity in the list, unless the operator has gone to another page.
      setTimeout(() => { if (location.hash === '#/identities') route(); }, 800);
    } catch (error) {
      fill(outcome, message('error', error.message));
    } finally {
      button.disabled = false;
    }
  } },
  h('p', {}, 'A client certificate of this organisation (pactum certs issue --role client) and its private key. The console keeps the key (readable by its service only), enrols the identity on the ledger, and can then act as it on the Contracts page.'),
  h('label', { for: 'identity-name' }, 'Name', h('span', { class: 'hint' }, 'lower-case letters, digits and dashes'), name),
  h('label', { for: 'identity-certificate' }, 'Certificate (PEM)', certificate),
  h('label', { for: 'identity-key' }, 'Private key (PEM)', key),
  h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Enrol')),
  outcome);
  show(h('h1', {}, 'Identities'),
    table(['Name', 'Key', 'Enrolled', 'Organisation', 'Role', 'Certificate expires'], (data.identities || []).map((identity) => [
      identity.name, h('a', { class: 'mono', href: `#/explorer/account/${identity.public_key}` }, short(identity.public_key)),
      identity.enrolled ? 'yes' : 'no', identity.organisation ?? '', identity.role ?? '', identity.not_after ? when(identity.not_after) : '']),
    ),
    h('h2', {}, 'Enrol a client certificate'), form);
}

// ---- contract interfaces ------------------------------------------------------------
//
// A contract built with the SDK declares its methods, their argument and return types
// and its records (ADR 0024); the node serves the declaration with the contract. Forms
// are built from it, the admin service encodes the values by it, and return data comes
// back decoded (`decoded`), shown here by its type.

const INTEGERS = new Set(['u8', 'u16', 'u32', 'u64', 'u128', 'i32', 'i64', 'i128']);

function typeName(type) {
  switch (type.kind) {
    case 'vec': return `Vec<${typeName(type.item)}>`;
    case 'option': return `Option<${typeName(type.item)}>`;
    case 'tuple': return `(${type.items.map(typeName).join(', ')})`;
    case 'record': return type.name;
    case 'fixed_bytes': return `[u8; ${type.length}]`;
    case 'string': return 'String';
    case 'address': return 'Address';
    case 'unit': return '()';
    default: return type.kind;
  }
}

function words(name) {
  return name.replace(/_/g, ' ');
}

// One argument's input and how to read its JSON value back.
function argumentField(prefix, field) {
  const id = `${prefix}-${field.name}`;
  const type = field.type;
  const kind = type.kind;
  if (kind === 'bool') {
    const box = h('input', { id, name: field.name, type: 'checkbox' });
    return { element: h('label', { for: id, class: 'check' }, box, words(field.name)), read: () => box.checked };
  }
  const hexBytes = kind === 'fixed_bytes' || (kind === 'vec' && type.item.kind === 'u8');
  const line = INTEGERS.has(kind) || kind === 'string' || kind === 'address' || hexBytes;
  const hints = {
    address: 'an account\'s public key or a contract\'s address, 64 hex digits',
    fixed_bytes: `hex, ${(type.length || 0) * 2} digits; empty for zeros`,
  };
  const hint = hints[kind] || (hexBytes ? 'hex' : line ? typeName(type) : `${typeName(type)} as JSON`);
  const input = line
    ? h('input', { id, name: field.name, spellcheck: 'false', autocomplete: 'off', inputmode: INTEGERS.has(kind) ? 'numeric' : null, list: kind === 'address' ? 'known-accounts' : null })
    : h('textarea', { id, name: field.name, spellcheck: 'false' });
  const read = () => {
    const text = input.value;
    if (kind === 'string') return text;
    if (kind === 'fixed_bytes' && text.trim() === '') return '00'.repeat(type.length);
    if (line) return text.trim();
    try { return JSON.parse(text); } catch (_) { throw new Error(`${words(field.name)} is not JSON (${typeName(type)})`); }
  };
  return { element: h('label', { for: id }, words(field.name), h('span', { class: 'hint' }, hint), input), read, input };
}

// Who a key is, when the console knows it.
function accountLink(key, names) {
  const name = names && names.get(key);
  return h('a', { class: 'mono', href: `#/explorer/account/${key}`, title: key }, name ? `${name} (${short(key)})` : short(key));
}

function renderValue(value, type, iface, names, fieldName = '') {
  switch (type.kind) {
    case 'unit': return h('span', { class: 'muted' }, 'nothing');
    case 'bool': return value ? 'yes' : 'no';
    case 'address': return accountLink(value, names);
    case 'fixed_bytes': return h('span', { class: 'mono' }, /^0+$/.test(value) ? '(none)' : short(value));
    case 'option': return value === null ? h('span', { class: 'muted' }, 'none') : renderValue(value, type.item, iface, names);
    case 'tuple': return h('span', {}, type.items.map((item, index) => [index ? ', ' : '', renderValue(value[index], item, iface, names)]));
    case 'vec': {
      if (type.item.kind === 'u8') return h('span', { class: 'mono' }, hexText(value));
      if (!value.length) return h('span', { class: 'muted' }, 'none');
      const record = type.item.kind === 'record' && iface.records.find((item) => item.name === type.item.name);
      if (record) {
        return table(record.fields.map((field) => words(field.name)),
          value.map((row) => record.fields.map((field) => renderValue(row[field.name], field.type, iface, names, field.name))));
      }
      return h('ul', {}, value.map((item) => h('li', {}, renderValue(item, type.item, iface, names))));
    }
    case 'record': {
      const record = iface.records.find((item) => item.name === type.name);
      if (!record) return h('span', { class: 'mono' }, JSON.stringify(value));
      return h('dl', { class: 'pairs' }, record.fields.map((field) => [
        h('dt', {}, words(field.name)), h('dd', {}, renderValue(value[field.name], field.type, iface, names, field.name))]));
    }
    default:
      // Block times are milliseconds since the epoch.
      if (fieldName.endsWith('_ms') && type.kind === 'u64') return new Date(Number(value)).toISOString().replace('T', ' ').slice(0, 19);
      return String(value);
  }
}

async function contractInterface(address) {
  const detail = await node(`contracts/${address}`);
  return detail.interface;
}

// The deployed contracts declaring every method in `methods`, with their interfaces.
async function contractsDeclaring(methods) {
  const list = await node('contracts?limit=100');
  const found = [];
  for (const item of list.contracts || []) {
    const iface = await contractInterface(item.address);
    if (iface && methods.every((name) => iface.methods.some((method) => method.name === name))) found.push({ address: item.address, iface });
  }
  return found;
}

function knownAccounts(identities) {
  return h('datalist', { id: 'known-accounts' }, identities.map((identity) => h('option', { value: identity.public_key }, identity.name)));
}

// Runs `method` as a call (signed) or a query; the answer's receipt-like part and the
// decoded return value.
async function invoke(kind, identity, contract, method, values) {
  const answer = await api('POST', `/admin/api/contracts/${kind}`, { identity, contract, method, values });
  const receipt = kind === 'call' ? answer.receipt : answer;
  return { answer, receipt, decoded: answer.decoded };
}

function receiptView(kind, answer, receipt, result) {
  return h('div', { class: 'panel' },
    message(receipt.status === 'success' ? 'ok' : 'error', `${kind}: ${receipt.status}${receipt.reason ? ` — ${receipt.reason}` : ''}`),
    h('dl', { class: 'pairs' },
      result !== null ? [h('dt', {}, 'Returned'), h('dd', { id: 'returned' }, result)] : null,
      h('dt', {}, 'Return data'), h('dd', { class: 'mono' }, hexText(receipt.return_data) || '(none)'),
      h('dt', {}, 'Gas used'), h('dd', {}, String(receipt.gas_used ?? '')),
      answer.transaction ? [h('dt', {}, 'Transaction'), h('dd', {}, h('a', { class: 'mono', href: `#/explorer/transaction/${answer.transaction}` }, short(answer.transaction)))] : null),
    (receipt.events || []).length ? table(['Topic', 'Data'], receipt.events.map((event) => [event.topic, h('span', { class: 'mono' }, hexText(event.data))])) : null);
}

// ---- contracts ----------------------------------------------------------------------

const RETURN_TYPES = ['', 'string', 'bool', 'u8', 'u32', 'u64', 'u128', 'address', 'bytes'];

function lines(text) {
  return text.split('\n').map((line) => line.trim()).filter(Boolean);
}

async function identityOptions(id, identities) {
  const list = identities || (await api('GET', '/admin/api/identities')).identities || [];
  return h('select', { id, name: 'identity' }, list.map((identity) => h('option', { value: identity.name }, identity.name)));
}

async function contractsPage() {
  const [list, ids] = await Promise.all([node('contracts?limit=100'), api('GET', '/admin/api/identities')]);
  const contracts = list.contracts || [];
  const identities = ids.identities || [];
  const names = new Map(identities.map((identity) => [identity.public_key, identity.name]));
  const actAs = await identityOptions('call-identity', identities);
  const contract = h('select', { id: 'call-contract', name: 'contract' }, contracts.map((item) => h('option', { value: item.address }, short(item.address))));
  const method = h('select', { id: 'call-method', name: 'method' });
  const methodText = h('input', { id: 'call-method-name', name: 'method-name', spellcheck: 'false' });
  const fields = h('div', { class: 'form', id: 'call-fields' });
  const args = h('textarea', { id: 'call-arguments', name: 'arguments', placeholder: 'one per line: type:value, e.g. string:hello, u128:5, account:<public key hex>' });
  const returns = h('select', { id: 'call-returns', name: 'returns' }, RETURN_TYPES.map((kind) => h('option', { value: kind }, kind || '(raw hex)')));
  const declared = h('p', { class: 'muted', id: 'call-interface' });
  const typed = h('div', { class: 'form' }, h('label', { for: 'call-method' }, 'Method', method), fields);
  const raw = h('div', { class: 'form' },
    h('label', { for: 'call-method-name' }, 'Method', methodText),
    h('label', { for: 'call-arguments' }, 'Arguments', args),
    h('label', { for: 'call-returns' }, 'Show the return data as', returns));
  const result = h('div', { 'aria-live': 'polite', id: 'call-result' });
  let iface = null;
  let loaded = null;
  let readers = [];
  const showFields = () => {
    const declaredMethod = iface && iface.methods.find((item) => item.name === method.value);
    const built = (declaredMethod ? declaredMethod.arguments : []).map((field) => argumentField('arg', field));
    readers = built.map((field) => field.read);
    fill(fields, built.map((field) => field.element),
      declaredMethod ? h('p', { class: 'muted' }, `returns ${typeName(declaredMethod.returns)}`) : null);
  };
  const choose = async () => {
    if (contract.value === loaded) return;
    loaded = contract.value;
    fill(result);
    iface = contract.value ? await contractInterface(contract.value) : null;
    typed.hidden = !iface;
    raw.hidden = Boolean(iface);
    fill(declared, iface
      ? `This contract declares ${iface.methods.length} methods; the form follows its declaration.`
      : 'This contract declares no interface: write the arguments as type:value lines.');
    fill(method, (iface ? iface.methods : []).map((item) => h('option', { value: item.name }, item.name)));
    showFields();
  };
  contract.addEventListener('change', choose);
  method.addEventListener('change', () => { fill(result); showFields(); });
  const run = (kind) => async () => {
    try {
      let outcome;
      if (iface) {
        outcome = await invoke(kind, actAs.value, contract.value, method.value, readers.map((read) => read()));
      } else {
        const body = { identity: actAs.value, contract: contract.value, method: methodText.value.trim(), arguments: lines(args.value), returns: returns.value || null };
        const answer = await api('POST', `/admin/api/contracts/${kind}`, body);
        outcome = { answer, receipt: kind === 'call' ? answer.receipt : answer, decoded: undefined };
      }
      const { answer, receipt, decoded } = outcome;
      const declaredMethod = iface && iface.methods.find((item) => item.name === method.value);
      let shown = null;
      if (decoded !== undefined && declaredMethod) shown = decoded && decoded.error && Object.keys(decoded).length === 1 ? `cannot decode: ${decoded.error}` : renderValue(decoded, declaredMethod.returns, iface, names);
      else if (answer.returned !== undefined) shown = answer.returned;
      fill(result, receiptView(kind, answer, receipt, shown));
    } catch (error) {
      fill(result, message('error', error.message));
    }
  };
  const code = h('input', { id: 'deploy-code', name: 'code', type: 'file', accept: '.wasm,application/wasm' });
  const deployAs = await identityOptions('deploy-identity', identities);
  const initArgs = h('textarea', { id: 'deploy-arguments', name: 'init', placeholder: 'init arguments, one per line: type:value; or a JSON array when the module declares its interface' });
  const deployed = h('div', { 'aria-live': 'polite' });
  const deploy = async () => {
    try {
      const file = code.files[0];
      if (!file) throw new Error('Choose a .wasm file.');
      const bytes = new Uint8Array(await file.arrayBuffer());
      const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
      const text = initArgs.value.trim();
      const body = { identity: deployAs.value, code: hex };
      if (text.startsWith('[')) body.init_values = JSON.parse(text); else body.init_arguments = lines(text);
      const answer = await api('POST', '/admin/api/contracts/deploy', body);
      fill(deployed, message(answer.outcome === 'ok' ? 'ok' : 'error', `Deployed: ${answer.outcome}; address ${answer.address}`));
    } catch (error) {
      fill(deployed, message('error', error.message));
    }
  };
  show(h('h1', {}, 'Contracts'),
    h('h2', {}, 'Deployed contracts'),
    table(['Address', 'Code hash'], contracts.map((item) => [h('a', { class: 'mono', href: `#/explorer/contract/${item.address}` }, item.address), h('span', { class: 'mono' }, short(item.code_hash))])),
    h('h2', {}, 'Call or query a method'),
    h('p', { class: 'muted' }, 'A call is a signed transaction; a query reads the committed state and changes nothing.'),
    knownAccounts(identities),
    h('div', { class: 'form' },
      h('label', { for: 'call-identity' }, 'Act as', actAs),
      h('label', { for: 'call-contract' }, 'Contract', contract),
      declared, typed, raw,
      h('div', { class: 'row' }, h('button', { type: 'button', id: 'call', onclick: run('call') }, 'Call (sign)'), h('button', { type: 'button', class: 'secondary', id: 'query', onclick: run('query') }, 'Query')),
      result),
    h('h2', {}, 'Deploy a contract'),
    h('div', { class: 'form' },
      h('label', { for: 'deploy-code' }, 'WebAssembly module', code),
      h('label', { for: 'deploy-identity' }, 'Deploy as', deployAs),
      h('label', { for: 'deploy-arguments' }, 'Init arguments', initArgs),
      h('div', { class: 'row' }, h('button', { type: 'button', id: 'deploy', onclick: deploy }, 'Deploy (sign)')),
      deployed));
  await choose();
}

// ---- sample applications ------------------------------------------------------------
//
// The supply-chain and healthcare pages work with any deployed contract that declares
// their methods; their forms come from its interface, like the Contracts page's.

async function applicationPage(title, intro, methods, build) {
  const [found, ids] = await Promise.all([contractsDeclaring(methods), api('GET', '/admin/api/identities')]);
  if (!found.length) {
    show(h('h1', {}, title), message('error', `No deployed contract declares ${methods.join(', ')}. Deploy one from the Contracts page.`));
    return;
  }
  const identities = ids.identities || [];
  const app = {
    names: new Map(identities.map((identity) => [identity.public_key, identity.name])),
    contract: h('select', { id: 'app-contract', name: 'contract' }, found.map((item) => h('option', { value: item.address }, short(item.address)))),
    actAs: await identityOptions('app-identity', identities),
    shared: {},
  };
  app.iface = () => found.find((item) => item.address === app.contract.value).iface;
  show(h('h1', {}, title), h('p', { class: 'muted' }, intro), knownAccounts(identities),
    h('div', { class: 'form app-choice' },
      h('label', { for: 'app-contract' }, 'Contract', app.contract),
      h('label', { for: 'app-identity' }, 'Act as', h('span', { class: 'hint' }, 'the identity that signs each action below'), app.actAs)),
    build(app));
}

// A form for one method: its inputs from the interface (less those the page shares),
// a button, and the outcome. `after(decoded, receipt)` may add to the outcome.
function action(app, { method, title, kind = 'call', label, after, wide = false }) {
  const declared = app.iface().methods.find((item) => item.name === method);
  const readers = new Map(Object.entries(app.shared).map(([name, shared]) => [name, shared.read]));
  const built = declared.arguments.filter((field) => !app.shared[field.name]).map((field) => {
    const input = argumentField(method, field);
    readers.set(field.name, input.read);
    return input;
  });
  const outcome = h('div', { 'aria-live': 'polite', id: `${method}-outcome` });
  const form = h('form', { class: wide ? 'panel action wide' : 'panel action', id: `${method}-form`, onsubmit: async (event) => {
    event.preventDefault();
    const button = form.querySelector('button');
    button.disabled = true;
    fill(outcome, message('', kind === 'call' ? 'Signing and waiting for the block…' : 'Reading…'));
    try {
      const values = declared.arguments.map((field) => readers.get(field.name)());
      const { receipt, decoded } = await invoke(kind, app.actAs.value, app.contract.value, method, values);
      const ok = receipt.status === 'success';
      const extra = ok && after ? after(decoded, receipt) : null;
      fill(outcome,
        extra && extra.message ? extra.message : message(ok ? 'ok' : 'error', ok ? `${title}: done${kind === 'call' ? ` (${app.actAs.value})` : ''}` : `${title}: refused — ${receipt.reason || receipt.status}`),
        extra && extra.view ? extra.view : (!extra && ok && declared.returns.kind !== 'unit' ? renderValue(decoded, declared.returns, app.iface(), app.names) : null));
    } catch (error) {
      fill(outcome, message('error', error.message));
    } finally {
      button.disabled = false;
    }
  } },
  h('h3', {}, title),
  built.map((field) => field.element),
  h('div', { class: 'row' }, h('button', { type: 'submit', id: `${method}-submit` }, label || title)),
  outcome);
  return form;
}

// A text input several forms share (the product id, the patient).
function sharedField(app, name, labelText, hint, attributes = {}) {
  const id = `shared-${name}`;
  const input = h('input', { id, name, spellcheck: 'false', autocomplete: 'off', ...attributes });
  app.shared[name] = { read: () => input.value.trim(), input };
  return h('label', { for: id }, labelText, h('span', { class: 'hint' }, hint), input);
}

const STEP_NAMES = { registered: 'Registered', custody: 'Custody transferred', inspection: 'Inspection', reading: 'Sensor reading', flagged: 'Flagged', recalled: 'Recalled' };

function provenance(app, product, steps) {
  const state = product.recalled ? 'recalled' : product.flagged ? 'flagged' : 'in circulation';
  return h('div', { id: 'provenance' },
    h('div', { class: 'cards' },
      card('Status', h('span', { class: product.recalled || product.flagged ? 'bad' : 'good', id: 'product-status' }, state)),
      card('Custodian', accountLink(product.custodian, app.names)),
      card('Location', product.location || '—'),
      card('Steps', String(product.history_length))),
    h('ol', { class: 'timeline', id: 'timeline' }, steps.map((step) => {
      let what = STEP_NAMES[step.kind] || step.kind;
      if (step.kind === 'reading') what = `Sensor reading: ${step.detail} = ${step.value}`;
      if (step.kind === 'inspection') what = `Inspection ${step.value === '1' ? 'passed' : 'failed'}${step.detail ? `: ${step.detail}` : ''}`;
      if ((step.kind === 'flagged' || step.kind === 'recalled') && step.detail) what = `${what}: ${step.detail}`;
      if (step.kind === 'registered') what = `${what} (${step.detail})`;
      return h('li', { 'data-kind': step.kind },
        h('strong', {}, what),
        h('div', { class: 'muted' }, 'by ', accountLink(step.actor, app.names), ` · block ${step.height} · ${renderValue(step.timestamp_ms, { kind: 'u64' }, null, null, 'timestamp_ms')}`),
        h('div', {}, 'custodian ', accountLink(step.custodian, app.names), step.location ? ` at ${step.location}` : ''));
    })));
}

async function supplyChainPage() {
  await applicationPage('Supply chain',
    'Register shipments, hand them from party to party, record sensor readings and inspections, flag and recall them, and follow each one\'s provenance. The contract\'s administrator (its deployer) registers the parties.',
    ['register_party', 'register_product', 'transfer_custody', 'record_reading', 'record_inspection', 'flag', 'recall', 'product', 'history'],
    (app) => {
      const timeline = h('div', { 'aria-live': 'polite', id: 'provenance-view' });
      const refresh = async () => {
        const id = app.shared.id.read();
        if (!id) return;
        try {
          const product = await invoke('query', app.actAs.value, app.contract.value, 'product', [id]);
          if (product.receipt.status !== 'success') { fill(timeline, message('error', product.receipt.reason || product.receipt.status)); return; }
          const history = await invoke('query', app.actAs.value, app.contract.value, 'history', [id]);
          fill(timeline, provenance(app, product.decoded, history.decoded));
        } catch (error) {
          fill(timeline, message('error', error.message));
        }
      };
      const step = (method, title, label) => action(app, { method, title, label, after: () => { refresh(); return null; } });
      const parties = action(app, { method: 'register_party', title: 'Register a party', label: 'Register' });
      const shipmentField = sharedField(app, 'id', 'Shipment', 'its product id, 1 to 64 bytes', { required: true });
      return [
        h('h2', {}, 'Parties'), parties,
        h('h2', {}, 'Shipment'),
        h('div', { class: 'form' }, shipmentField,
          h('div', { class: 'row' }, h('button', { type: 'button', class: 'secondary', id: 'show-provenance', onclick: refresh }, 'Show its provenance'))),
        h('div', { class: 'actions' },
          step('register_product', 'Register the shipment', 'Register'),
          step('transfer_custody', 'Transfer custody', 'Transfer'),
          step('record_reading', 'Record a sensor reading', 'Record'),
          step('record_inspection', 'Record an inspection', 'Record'),
          step('flag', 'Flag', 'Flag'),
          step('recall', 'Recall', 'Recall')),
        h('h2', {}, 'Provenance'), timeline,
      ];
    });
}

async function healthcarePage() {
  await applicationPage('Healthcare',
    'Patients keep references to their records (a hash and a pointer, never the record) and decide which providers may read them. Every read, allowed or refused, is in the patient\'s audit trail, which only the patient reads. The contract\'s administrator registers providers.',
    ['register_provider', 'register_patient', 'grant_consent', 'revoke_consent', 'add_record', 'read_records', 'my_records', 'audit_trail'],
    (app) => {
      const read = action(app, {
        method: 'read_records', title: 'Read a patient\'s records', label: 'Read (signed, audited)', wide: true,
        after: (access) => ({
          message: access.granted
            ? message('ok', `Read allowed: ${access.records.length} record reference(s)`)
            : message('error', 'Read refused: the patient has not granted this provider consent. The attempt is in the patient\'s audit trail.'),
          view: access.granted ? renderValue(access.records, { kind: 'vec', item: { kind: 'record', name: 'RecordReference' } }, app.iface(), app.names) : null,
        }),
      });
      return [
        h('h2', {}, 'Administrator'),
        action(app, { method: 'register_provider', title: 'Register a provider', label: 'Register' }),
        h('h2', {}, 'Patient'),
        h('div', { class: 'actions' },
          action(app, { method: 'register_patient', title: 'Register as a patient', label: 'Register' }),
          action(app, { method: 'grant_consent', title: 'Grant consent to a provider', label: 'Grant' }),
          action(app, { method: 'revoke_consent', title: 'Revoke a provider\'s consent', label: 'Revoke' }),
          action(app, { method: 'my_records', title: 'My record references', kind: 'query', label: 'Show', wide: true }),
          action(app, { method: 'audit_trail', title: 'My audit trail', kind: 'query', label: 'Show', wide: true })),
        h('h2', {}, 'Provider'),
        h('div', { class: 'actions' },
          action(app, { method: 'add_record', title: 'Add a record reference', label: 'Add' }),
          read),
      ];
    });
}

// ---- explorer -----------------------------------------------------------------------

function hexText(hex, limit = 96) {
  const text = String(hex || '');
  return text.length > limit ? `${text.slice(0, limit)}… (${text.length / 2} bytes)` : text;
}

function payloadKind(payload) {
  if (!payload) return '';
  if (payload.type) return payload.type + (payload.method ? ` ${payload.method}` : '');
  return Object.keys(payload)[0] || '';
}

function searchForm() {
  const query = h('input', { id: 'search', name: 'search', placeholder: 'block height, transaction hash, account key or contract address', spellcheck: 'false' });
  const problem = h('div', { 'aria-live': 'polite' });
  return h('form', { role: 'search', onsubmit: async (event) => {
    event.preventDefault();
    const text = query.value.trim().toLowerCase();
    if (/^[0-9]+$/.test(text)) { location.hash = `#/explorer/block/${text}`; return; }
    if (!/^[0-9a-f]{64}$/.test(text)) { fill(problem, message('error', 'Enter a block height or 64 hex digits.')); return; }
    for (const [path, page] of [['transactions', 'transaction'], ['contracts', 'contract']]) {
      try {
        const found = await node(`${path}/${text}`);
        if (page !== 'transaction' || found.status !== 'unknown') { location.hash = `#/explorer/${page}/${text}`; return; }
      } catch (_) { /* not that kind */ }
    }
    location.hash = `#/explorer/account/${text}`;
  } }, h('label', { for: 'search' }, 'Search'), h('div', { class: 'row' }, query, h('button', { type: 'submit' }, 'Search')), problem);
}

async function explorer() {
  const list = h('div', {}, message('ok', 'Loading…'));
  const live = h('p', { class: 'muted', id: 'live' }, 'Connecting to the event stream…');
  show(h('h1', {}, 'Explorer'), searchForm(), h('h2', {}, 'Latest blocks'), live, list);
  const load = async () => {
    const status = await node('status');
    const from = Math.max(1, status.height - 19);
    const page = await node(`chain?from=${from}&limit=20`);
    const blocks = (page.blocks || []).slice().reverse();
    fill(list, blocks.length ? table(['Height', 'Hash', 'Time', 'View', 'Transactions', 'Signatures'], blocks.map((summary) => [
      h('a', { href: `#/explorer/block/${summary.height}` }, String(summary.height)),
      h('span', { class: 'mono' }, short(summary.hash)),
      new Date(summary.timestamp_ms).toISOString().replace('T', ' ').slice(0, 19),
      String(summary.view), String(summary.transactions), String(summary.certificate_signatures)])) : h('p', { class: 'muted' }, 'No blocks yet.'));
  };
  await load();
  // Live from the node's event stream, passed through by the admin service: each
  // committed block reloads the list. Should the stream fail, poll every 2 s instead.
  const stream = new EventSource('/admin/api/events?blocks=true');
  eventStream = stream;
  stream.addEventListener('open', () => fill(live, 'Live: each block appears as it commits.'));
  stream.addEventListener('block', (event) => {
    const committed = JSON.parse(event.data);
    fill(live, `Live: block ${committed.height} committed ${new Date(committed.timestamp_ms).toISOString().replace('T', ' ').slice(11, 19)} UTC.`);
    load().catch(() => {});
  });
  stream.addEventListener('error', () => {
    if (stream.readyState !== EventSource.CLOSED) return; // it reconnects by itself
    fill(live, 'The event stream is unavailable; refreshing every 2 s.');
    pollTimer = setInterval(() => { load().catch(() => {}); }, 2000);
  });
}

async function block(height) {
  const data = await node(`blocks/${height}`);
  const header = data.block.header || {};
  const hashes = data.transaction_hashes || [];
  const signatures = ((data.block.certificate || {}).signatures || []);
  show(h('h1', {}, `Block ${height}`), searchForm(),
    h('dl', { class: 'pairs panel' },
      h('dt', {}, 'Hash'), h('dd', { class: 'mono' }, data.hash),
      Object.entries(header).filter(([, value]) => typeof value !== 'object').map(([name, value]) => [h('dt', {}, name), h('dd', { class: 'mono' }, String(value))])),
    h('div', { class: 'row' },
      Number(height) > 1 ? h('a', { href: `#/explorer/block/${Number(height) - 1}` }, '← previous') : null,
      h('a', { href: `#/explorer/block/${Number(height) + 1}` }, 'next →')),
    h('h2', {}, 'Transactions'),
    (data.block.transactions || []).length ? table(['#', 'Hash', 'Sender', 'Nonce', 'Payload'], data.block.transactions.map((tx, index) => [
      String(index),
      hashes[index] ? h('a', { href: `#/explorer/transaction/${hashes[index]}`, class: 'mono' }, short(hashes[index])) : '',
      h('a', { href: `#/explorer/account/${tx.sender}`, class: 'mono' }, short(tx.sender)),
      String(tx.nonce), payloadKind(tx.payload)])) : h('p', { class: 'muted' }, 'None (an empty block).'),
    h('h2', {}, 'Commit certificate'),
    table(['Validator', 'Signature'], signatures.map((signature) => [h('span', { class: 'mono' }, short(signature.validator)), h('span', { class: 'mono' }, short(signature.signature))])));
}

async function transaction(hash) {
  const data = await node(`transactions/${hash}`);
  const receipt = data.receipt || {};
  show(h('h1', {}, 'Transaction'), searchForm(),
    h('dl', { class: 'pairs panel' },
      h('dt', {}, 'Hash'), h('dd', { class: 'mono' }, hash),
      h('dt', {}, 'Status'), h('dd', {}, data.status),
      data.height ? [h('dt', {}, 'Block'), h('dd', {}, h('a', { href: `#/explorer/block/${data.height}` }, String(data.height)), ` (position ${data.position})`)] : null,
      receipt.status ? [h('dt', {}, 'Receipt'), h('dd', {}, h('span', { class: receipt.status === 'success' ? 'good' : 'bad' }, receipt.status), receipt.reason ? ` — ${receipt.reason}` : '')] : null,
      receipt.gas_used !== undefined ? [h('dt', {}, 'Gas used'), h('dd', {}, String(receipt.gas_used))] : null,
      data.reason ? [h('dt', {}, 'Reason'), h('dd', {}, data.reason)] : null,
      receipt.return_data ? [h('dt', {}, 'Return data'), h('dd', { class: 'mono' }, hexText(receipt.return_data))] : null),
    h('h2', {}, 'Events'),
    (receipt.events || []).length ? table(['Contract', 'Topic', 'Data'], receipt.events.map((event) => [
      h('a', { href: `#/explorer/contract/${event.contract}`, class: 'mono' }, short(event.contract)), event.topic, h('span', { class: 'mono' }, hexText(event.data))])) : h('p', { class: 'muted' }, 'None.'));
}

async function account(key) {
  const data = await node(`accounts/${key}`);
  show(h('h1', {}, 'Account'), searchForm(),
    h('dl', { class: 'pairs panel' },
      h('dt', {}, 'Public key'), h('dd', { class: 'mono' }, data.public_key),
      h('dt', {}, 'Enrolled'), h('dd', {}, data.enrolled ? `yes: ${data.organisation}, ${data.role}` : 'no'),
      h('dt', {}, 'Next nonce'), h('dd', {}, String(data.next_nonce)),
      h('dt', {}, 'Pending here'), h('dd', {}, JSON.stringify(data.pending_nonces ?? []))));
}

async function contract(address) {
  const data = await node(`contracts/${address}`);
  show(h('h1', {}, 'Contract'), searchForm(),
    h('dl', { class: 'pairs panel' },
      h('dt', {}, 'Address'), h('dd', { class: 'mono' }, data.address),
      h('dt', {}, 'Code hash'), h('dd', { class: 'mono' }, data.code_hash),
      h('dt', {}, 'Code size'), h('dd', {}, `${data.code_bytes} bytes`)),
    h('h2', {}, 'Interface'),
    data.interface
      ? table(['Method', 'Arguments', 'Returns'], data.interface.methods.map((method) => [
        h('span', { class: 'mono' }, method.name),
        h('span', { class: 'mono' }, method.arguments.map((field) => `${field.name}: ${typeName(field.type)}`).join(', ')),
        h('span', { class: 'mono' }, typeName(method.returns))]))
      : h('p', { class: 'muted' }, data.interface_error ? `Its interface section does not parse: ${data.interface_error}` : 'The contract declares no interface.'));
}

// ---- audit log ----------------------------------------------------------------------

async function audit() {
  const data = await api('GET', '/admin/api/audit');
  const entries = (data.entries || []).slice().reverse();
  show(h('h1', {}, 'Audit log'),
    h('p', { class: 'row' }, 'Every action taken in this console, newest first. Export: ',
      h('a', { href: '/admin/api/audit?format=csv', download: 'pactum-audit.csv' }, 'CSV'),
      h('a', { href: '/admin/api/audit?format=json', download: 'pactum-audit.json' }, 'JSON')),
    table(['Time', 'Session', 'Action', 'Subject', 'Outcome', 'Transaction'], entries.map((entry) => [
      new Date(entry.time_ms).toISOString().replace('T', ' ').slice(0, 19), String(entry.session), entry.action, entry.subject, entry.outcome, h('span', { class: 'mono' }, short(entry.transaction || ''))])));
}

// ---- start --------------------------------------------------------------------------

if (window.matchMedia('(max-width: 700px)').matches) nav.classList.add('closed');
start().catch(() => showLogin());
