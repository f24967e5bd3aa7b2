// The web view in the browser: one server-sent event stream of mesh snapshots (no polling), drawn as a map
// (cytoscape, served by the agent itself: the Pi may be offline), tables of agents, links and transfers, and
// the selected agent's actions (with a form to call one) and sensors (with their recent readings).
import cytoscape from 'cytoscape';
import type { MeshView, ViewAgent, ViewCallRequest, ViewLink, ViewReadRequest } from './view-types.js';

/** Readings kept per sensor for its chart: those seen since the page opened. */
const HISTORY = 60;

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`#${id} missing from the page`);
  return element as T;
};

const cy = cytoscape({
  container: byId('graph'),
  wheelSensitivity: 0.3,
  maxZoom: 1.6,
  style: [
    {
      selector: 'node',
      style: {
        label: 'data(label)',
        'text-wrap': 'wrap',
        'text-valign': 'bottom',
        'text-margin-y': 4,
        'font-size': 11,
        color: '#888',
        'background-color': '#8a8a8a',
        width: 26,
        height: 26,
      },
    },
    { selector: 'node.self', style: { 'background-color': '#2f6fdf', width: 34, height: 34 } },
    { selector: 'node.connected', style: { 'background-color': '#2e9d5b' } },
    { selector: 'node.routed', style: { 'background-color': '#c98a1b' } },
    { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#e74c3c' } },
    {
      selector: 'edge',
      style: {
        label: 'data(label)',
        'font-size': 9,
        color: '#888',
        'text-rotation': 'autorotate',
        width: 2,
        'line-color': '#2e9d5b',
        'curve-style': 'straight',
      },
    },
    { selector: 'edge.ble', style: { 'line-color': '#2f6fdf' } },
    { selector: 'edge.mesh', style: { 'line-style': 'dashed', 'line-color': '#999' } },
  ],
});

let view: MeshView | undefined;
let selected: string | undefined;
const history = new Map<string, { at: string; value: number }[]>();

function select(id: string): void {
  selected = id;
  cy.nodes().unselect();
  cy.getElementById(id).select();
  renderDetail();
}

cy.on('tap', 'node', (event) => select(event.target.id() as string));
// A row of the agents table selects its agent too (and is the way in without a pointer on the map).
byId('agents').addEventListener('click', (event) => {
  const row = (event.target as Element).closest('tr');
  if (row?.dataset.id !== undefined) select(row.dataset.id);
});

function nodeLabel(agent: ViewAgent): string {
  const where = agent.state === 'routed' && agent.hops !== null ? ` · ${agent.hops} hops` : '';
  return `${agent.name}${where}${agent.board === null ? '' : `\n${agent.board}`}`;
}

function linkLabel(link: ViewLink): string {
  const parts: string[] = [link.medium === 'mesh' ? 'link' : link.medium === 'wifi' ? 'Wi-Fi' : 'BLE'];
  if (link.rtt_ms !== null) parts.push(`${link.rtt_ms} ms`);
  if (link.rssi_dbm !== null) parts.push(`${link.rssi_dbm} dBm`);
  return parts.join(' · ');
}

const linkId = (link: ViewLink) => `${link.from}-${link.to}`;

/** Brings the map to the snapshot: changed labels in place, new and gone elements added and removed. */
function renderGraph(next: MeshView): void {
  const agents = new Map(next.agents.map((agent) => [agent.id, agent]));
  const links = new Map(next.links.map((link) => [linkId(link), link]));
  let structureChanged = false;
  cy.batch(() => {
    for (const element of cy.elements().toArray()) {
      const id = element.id();
      if (element.isNode() ? !agents.has(id) : !links.has(id)) {
        element.remove();
        structureChanged = true;
      }
    }
    for (const agent of next.agents) {
      const data = { id: agent.id, label: nodeLabel(agent) };
      const node = cy.getElementById(agent.id);
      if (node.empty()) {
        cy.add({ group: 'nodes', data, classes: agent.state });
        structureChanged = true;
      } else {
        node.data(data);
        node.classes(agent.state);
      }
    }
    for (const link of next.links) {
      const data = { id: linkId(link), source: link.from, target: link.to, label: linkLabel(link) };
      const edge = cy.getElementById(data.id);
      if (edge.empty()) {
        cy.add({ group: 'edges', data, classes: link.medium });
        structureChanged = true;
      } else {
        edge.data(data);
        edge.classes(link.medium);
      }
    }
  });
  if (structureChanged) cy.layout({ name: 'cose', animate: false, padding: 30 }).run();
}

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className !== undefined) td.className = className;
  return td;
}

/** Replaces a table's rows; `ids` tag each row with what it shows (its agent). */
function fillTable(id: string, rows: HTMLTableCellElement[][], ids?: readonly string[]): void {
  const body = byId<HTMLTableElement>(id).tBodies[0];
  if (body === undefined) return;
  body.replaceChildren(
    ...rows.map((cells, index) => {
      const tr = document.createElement('tr');
      const rowId = ids?.[index];
      if (rowId !== undefined) tr.dataset.id = rowId;
      tr.append(...cells);
      return tr;
    }),
  );
}

function renderTables(next: MeshView): void {
  const names = new Map(next.agents.map((agent) => [agent.id, agent.name]));
  const name = (id: string) => names.get(id) ?? id;
  fillTable(
    'agents',
    next.agents.map((agent) => [
      cell(agent.name),
      cell(
        agent.state === 'routed' ? `routed (${agent.hops ?? '?'} hops)` : agent.state,
        `state-${agent.state}`,
      ),
      cell(agent.board ?? '-'),
      cell(agent.software ?? '-'),
      cell(agent.groups.join(', ') || '-'),
    ]),
    next.agents.map((agent) => agent.id),
  );
  fillTable(
    'links',
    next.links.map((link) => [
      cell(`${name(link.from)} – ${name(link.to)}`),
      cell(link.medium === 'mesh' ? 'announced' : link.medium),
      cell(link.rtt_ms === null ? '-' : `${link.rtt_ms} ms`),
      cell(link.rssi_dbm === null ? '-' : `${link.rssi_dbm} dBm`),
    ]),
  );
  fillTable(
    'transfers',
    next.transfers.map((transfer) => {
      const done = cell('');
      const bar = document.createElement('progress');
      bar.max = Math.max(1, transfer.size);
      bar.value = transfer.bytes_done;
      done.append(bar, ` ${Math.floor((100 * transfer.bytes_done) / Math.max(1, transfer.size))} %`);
      return [
        cell(transfer.name),
        cell(`${transfer.direction === 'out' ? 'to' : 'from'} ${name(transfer.peer)}`),
        done,
        cell(transfer.state),
      ];
    }),
  );
}

function renderHealth(next: MeshView): void {
  const self = next.self;
  byId('title').textContent = `nearmesh · ${self.name}`;
  document.title = `${self.name} · nearmesh`;
  const items = [
    `up ${formatDuration(self.uptime_s)}`,
    `${(self.rss_bytes / 2 ** 20).toFixed(0)} MB memory`,
    self.cpu_temp_c === null ? undefined : `CPU ${self.cpu_temp_c.toFixed(1)} °C`,
    `key epoch ${self.key_epoch}`,
    `event loop p99 ${self.event_loop_p99_ms} ms`,
    `${self.queued_messages} queued`,
    `inbox ${self.inbox_messages}`,
    `v${self.version}`,
  ].filter((item): item is string => item !== undefined);
  const health = byId('health');
  health.replaceChildren(
    ...items.map((text) => {
      const span = document.createElement('span');
      span.textContent = text;
      return span;
    }),
  );
  if (self.troubles.length > 0) {
    const span = document.createElement('span');
    span.className = 'trouble';
    span.title = self.troubles.map((t) => `${t.name}: ${t.count}`).join('\n');
    span.textContent = `${self.troubles.reduce((sum, t) => sum + t.count, 0)} errors counted`;
    health.append(span);
  }
}

function formatDuration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}

function remember(next: MeshView): void {
  for (const sensor of next.sensors) {
    if (typeof sensor.value !== 'number' || sensor.read_at === null) continue;
    const key = `${sensor.peer}/${sensor.sensor}`;
    const points = history.get(key) ?? [];
    if (points.at(-1)?.at !== sensor.read_at) points.push({ at: sensor.read_at, value: sensor.value });
    if (points.length > HISTORY) points.shift();
    history.set(key, points);
  }
}

function sparkline(points: readonly { value: number }[]): SVGSVGElement {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 120 28');
  svg.setAttribute('aria-hidden', 'true');
  if (points.length < 2) return svg;
  const values = points.map((point) => point.value);
  const low = Math.min(...values);
  const span = Math.max(...values) - low || 1;
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute(
    'points',
    values
      .map(
        (value, i) =>
          `${((i / (values.length - 1)) * 118 + 1).toFixed(1)},${(26 - ((value - low) / span) * 24).toFixed(1)}`,
      )
      .join(' '),
  );
  svg.append(line);
  return svg;
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  return made;
}

/** The selected agent: what it is, its actions (each with a call form) and its sensors. */
function renderDetail(force = false): void {
  const detail = byId('detail');
  const agent = view?.agents.find((candidate) => candidate.id === selected);
  if (view === undefined || agent === undefined) return;
  // A form being filled in is not redrawn under the user's fingers.
  if (!force && detail.contains(document.activeElement) && document.activeElement?.tagName === 'TEXTAREA')
    return;
  const parts: HTMLElement[] = [
    element('h2', agent.name),
    element(
      'p',
      [
        agent.id,
        agent.state === 'routed' ? `routed, ${agent.hops ?? '?'} hops` : agent.state,
        agent.board ?? undefined,
        agent.software === null ? undefined : `v${agent.software}`,
        agent.groups.length > 0 ? `groups: ${agent.groups.join(', ')}` : undefined,
      ]
        .filter((part) => part !== undefined)
        .join(' · '),
    ),
  ];
  const actions = view.actions[agent.id] ?? [];
  parts.push(element('h3', actions.length === 0 ? 'No actions' : 'Actions'));
  for (const action of actions) parts.push(callForm(agent, action));
  const leases = view.leases.filter((lease) => lease.peer === agent.id);
  if (leases.length > 0) {
    parts.push(element('h3', 'Leases'));
    for (const lease of leases) {
      const left = lease.remaining_ms === null ? 'renewed' : `${Math.ceil(lease.remaining_ms / 1000)} s left`;
      parts.push(element('p', `${lease.resource}: held by ${lease.holder_name ?? lease.holder} (${left})`));
    }
  }
  const sensors = view.sensors.filter((sensor) => sensor.peer === agent.id);
  parts.push(element('h3', sensors.length === 0 ? 'No sensors' : 'Sensors'));
  for (const sensor of sensors) {
    const row = element('div');
    row.className = 'sensor';
    const unit = sensor.unit === null ? '' : ` ${UNITS[sensor.unit] ?? sensor.unit}`;
    const value = sensor.value === null ? 'not read yet' : `${String(sensor.value)}${unit}`;
    const read = element('button', 'read now');
    read.type = 'button';
    read.addEventListener('click', () => {
      read.disabled = true;
      const request: ViewReadRequest = { peer: sensor.peer, sensor: sensor.sensor };
      void post('/api/read', request)
        .catch(() => undefined)
        .finally(() => {
          read.disabled = false;
        });
    });
    row.append(
      sparkline(history.get(`${sensor.peer}/${sensor.sensor}`) ?? []),
      element('span', `${sensor.sensor}: ${value}`),
      read,
    );
    if (sensor.read_at !== null) row.title = `read at ${sensor.read_at}`;
    parts.push(row);
  }
  if (agent.state === 'self') {
    parts.push(
      element('h3', 'Messages'),
      element(
        'p',
        `${view.self.queued_messages} queued for peers · ${view.self.inbox_messages} in the inbox (${view.self.inbox_bytes} bytes)`,
      ),
    );
  }
  detail.replaceChildren(...parts);
}

/** What each call form last said (by peer and action), kept across redraws of the panel. */
const callOutcomes = new Map<string, { text: string; busy: boolean; args: string }>();

function callForm(agent: ViewAgent, action: string): HTMLFormElement {
  const key = `${agent.id}/${action}`;
  const outcome = callOutcomes.get(key);
  const form = element('form');
  form.className = 'call';
  form.dataset.action = action;
  const args = element('textarea');
  args.name = 'args';
  args.value = outcome?.args ?? '{}';
  args.setAttribute('aria-label', `arguments of ${action} (JSON)`);
  const button = element('button', action);
  button.type = 'submit';
  button.disabled = outcome?.busy === true;
  const result = element('div', outcome?.text ?? '');
  result.className = 'result';
  form.append(button, args, result);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void call(agent.id, action, args.value);
  });
  return form;
}

/** Units as nearmesh spells them (UCUM) that people read otherwise. */
const UNITS: Record<string, string> = { Cel: '°C', '[degF]': '°F', 'dB[mW]': 'dBm' };

/** A POST of JSON to the agent; the answer's JSON. */
async function post(path: string, body: unknown): Promise<unknown> {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return response.json();
}

/** Calls an action from its form; the outcome shows in the form, redrawn with the panel. */
async function call(target: string, action: string, argsText: string): Promise<void> {
  const key = `${target}/${action}`;
  const show = (text: string, busy = false) => {
    callOutcomes.set(key, { text, busy, args: argsText });
    renderDetail(true);
  };
  let args: unknown;
  try {
    args = JSON.parse(argsText || '{}');
  } catch {
    show('the arguments are not JSON');
    return;
  }
  if (typeof args !== 'object' || args === null || Array.isArray(args)) {
    show('the arguments must be a JSON object, like {"value": 1}');
    return;
  }
  show('calling…', true);
  try {
    const request: ViewCallRequest = { target, action, args: args as Record<string, unknown> };
    show(JSON.stringify(await post('/api/call', request), null, 1));
  } catch (error) {
    show(`the call did not reach the agent: ${String(error)}`);
  }
}

function connect(): void {
  const live = byId('live');
  const events = new EventSource('/api/events');
  events.addEventListener('view', (event) => {
    view = JSON.parse((event as MessageEvent<string>).data) as MeshView;
    selected ??= view.self.id;
    remember(view);
    renderHealth(view);
    renderGraph(view);
    renderTables(view);
    renderDetail();
    live.textContent = 'live';
    live.classList.remove('off');
  });
  events.addEventListener('error', () => {
    live.textContent = 'reconnecting…';
    live.classList.add('off');
  });
}

connect();
