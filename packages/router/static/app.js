// Switchyard dashboard: live vhost table (prefix search + cursor paging, so 10k+ hosts stay cheap),
// per-host request and 5xx rates, the event stream over WebSocket, the route explainer, and node
// drain/undrain/weight buttons (admin token). The token lives in sessionStorage and goes with every call
// (as a `bearer.<base64url>` subprotocol for the WebSocket, which cannot carry an Authorization header).

const PAGE = 50;
const $ = (id) => document.getElementById(id);
const state = {
  prefix: '',
  cursors: [undefined],
  page: 0,
  next: null,
  previous: new Map(),
  lastAt: 0,
  rates: new Map(),
};

function token() {
  return sessionStorage.getItem('switchyard.token') ?? '';
}

async function api(method, path, body) {
  const headers = {};
  if (token() !== '') headers.authorization = `Bearer ${token()}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${res.status} ${data.error?.code ?? ''} ${data.error?.message ?? ''}`.trim());
  return data;
}

function showError(error) {
  const p = $('error');
  p.hidden = error === undefined;
  p.textContent = error === undefined ? '' : String(error.message ?? error);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function loadPage() {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (state.prefix !== '') q.set('prefix', state.prefix);
  const cursor = state.cursors[state.page];
  if (cursor !== undefined) q.set('cursor', cursor);
  try {
    const data = await api('GET', `/v1/vhosts?${q}`);
    state.next = data.next;
    render(data);
    showError(undefined);
  } catch (error) {
    showError(error);
  }
}

function render(data) {
  const now = performance.now();
  const seconds = state.lastAt === 0 ? 0 : (now - state.lastAt) / 1000;
  state.lastAt = now;
  const tbody = $('hosts').querySelector('tbody');
  tbody.replaceChildren(...data.hosts.map((host) => hostRow(host, seconds)));
  $('summary').textContent = `${data.total} hosts · version ${data.version}`;
  $('page-info').textContent = `page ${state.page + 1} · ${data.count} shown`;
  $('prev').disabled = state.page === 0;
  $('next').disabled = data.next === null;
}

function hostRow(host, seconds) {
  const before = state.previous.get(host.host);
  state.previous.set(host.host, host.traffic);
  let rate = state.rates.get(host.host) ?? { rps: 0, err: 0 };
  if (before !== undefined && seconds > 0) {
    rate = {
      rps: Math.max(0, host.traffic.requests - before.requests) / seconds,
      err: Math.max(0, host.traffic['5xx'] - before['5xx']) / seconds,
    };
    state.rates.set(host.host, rate);
  }
  const nodes = el('td');
  for (const node of host.nodes) nodes.append(nodeLine(host.host, node));
  return el(
    'tr',
    { 'data-host': host.host },
    el('td', {}, host.host, host.maintenance === null ? '' : el('span', { class: 'state draining' }, ' maintenance')),
    el('td', { class: 'num' }, rate.rps.toFixed(1)),
    el('td', { class: 'num' }, rate.err.toFixed(1)),
    el('td', {}, `${host.balancer}`, el('span', { class: 'muted' }, ` (${host.balancerSource})`)),
    nodes,
  );
}

function nodeLine(host, node) {
  const ejected = node.ejection !== null && node.ejection.ejected === true;
  const label = ejected ? 'ejected' : node.state;
  const draining = node.state === 'draining';
  return el(
    'div',
    { class: 'node', 'data-node': `${host}|${node.address}`, 'data-state': node.state },
    el('code', {}, node.address),
    el('span', { class: `state ${label}` }, label),
    el(
      'span',
      { class: 'muted' },
      `${node.source} · w${node.weight} · ${node.inFlight} in flight · ${node.requests} req`,
    ),
    el(
      'button',
      {
        class: 'small',
        type: 'button',
        'data-action': draining ? 'undrain' : 'drain',
        onclick: () => patchNode(host, node.address, { state: draining ? 'active' : 'draining' }),
      },
      draining ? 'undrain' : 'drain',
    ),
    el(
      'button',
      {
        class: 'small',
        type: 'button',
        'data-action': 'weight-down',
        onclick: () => patchNode(host, node.address, { weight: Math.max(1, node.weight - 1) }),
      },
      'w−',
    ),
    el(
      'button',
      {
        class: 'small',
        type: 'button',
        'data-action': 'weight-up',
        onclick: () => patchNode(host, node.address, { weight: Math.min(1000, node.weight + 1) }),
      },
      'w+',
    ),
  );
}

async function patchNode(host, address, body) {
  try {
    await api('PATCH', `/v1/vhosts/${encodeURIComponent(host)}/nodes/${encodeURIComponent(address)}`, body);
    await loadPage();
  } catch (error) {
    showError(error);
  }
}

let refreshTimer;
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(loadPage, 200);
}

let socket;
let lastSeq;
function connectEvents() {
  const protocols = ['switchyard.events.v1'];
  if (token() !== '') {
    const b64 = btoa(unescape(encodeURIComponent(token())))
      .replaceAll('+', '-')
      .replaceAll('/', '_')
      .replaceAll('=', '');
    protocols.push(`bearer.${b64}`);
  }
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const since = lastSeq === undefined ? '' : `?since=${lastSeq}`;
  socket?.close();
  socket = new WebSocket(`${scheme}://${location.host}/v1/events${since}`, protocols);
  socket.onopen = () => {
    $('events-state').textContent = 'live';
  };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (typeof event.seq === 'number') lastSeq = event.seq;
    const list = $('events');
    const time = new Date(event.time ?? Date.now()).toLocaleTimeString();
    const text = [time, event.type, event.host ?? '', event.node ?? '', event.source ?? '', event.reason ?? '']
      .filter((s) => s !== '')
      .join(' ');
    list.prepend(el('li', { 'data-type': event.type }, text));
    while (list.children.length > 200) list.lastChild.remove();
    if (event.type !== 'rejected' && event.type !== 'refreshed') scheduleRefresh();
  };
  socket.onclose = (close) => {
    $('events-state').textContent = close.code === 1000 ? 'closed' : `reconnecting (${close.code})`;
    setTimeout(connectEvents, 2000);
  };
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem('switchyard.token', $('token').value);
  $('auth-state').textContent = $('token').value === '' ? 'no token' : 'token set';
  connectEvents();
  loadPage();
});
$('search').addEventListener('input', () => {
  state.prefix = $('search').value.trim().toLowerCase();
  state.cursors = [undefined];
  state.page = 0;
  scheduleRefresh();
});
$('next').addEventListener('click', () => {
  if (state.next === null) return;
  state.cursors[state.page + 1] = state.next;
  state.page++;
  loadPage();
});
$('prev').addEventListener('click', () => {
  if (state.page === 0) return;
  state.page--;
  loadPage();
});
$('explain-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const q = new URLSearchParams({ host: $('explain-host').value, path: $('explain-path').value || '/' });
  if ($('explain-client').value !== '') q.set('client', $('explain-client').value);
  try {
    $('explain-result').textContent = JSON.stringify(await api('GET', `/v1/route?${q}`), null, 2);
  } catch (error) {
    $('explain-result').textContent = String(error.message ?? error);
  }
});

$('token').value = token();
$('auth-state').textContent = token() === '' ? 'no token' : 'token set';
connectEvents();
loadPage();
setInterval(loadPage, 2000);
