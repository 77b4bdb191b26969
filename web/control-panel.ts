import {
  ApiError,
  commandsUrl,
  desiredUrl,
  getJson,
  isAbort,
  sendJson,
  type CommandView,
  type DesiredView,
  type StoredEvent,
} from './api.js';
import { h, setText } from './dom.js';
import { formatIso } from './format.js';

/** The command list shows this many, newest first. */
const LIST_LIMIT = 20;
/** Re-read at most this often while the device's events stream in. */
const REFRESH_MS = 300;

export interface ControlPanel {
  /** The desired-state card and the commands card. */
  els: HTMLElement[];
  /** A streamed event of this device: re-reads what it may have changed. */
  live(e: StoredEvent): void;
  destroy(): void;
}

/** A value typed into the form: JSON when it parses (`5`, `true`, `{"a":1}`, `null` removes), text otherwise. */
export function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/**
 * The device page's command side: desired vs reported with the delta marked and a form that changes desired state
 * (a merge patch sent with If-Match, so a change made meanwhile is not overwritten), and a form that sends a command
 * with the device's commands and their statuses, kept live from the event stream. `data-*` attributes name the
 * values for tests.
 */
export function createControlPanel(deviceId: string): ControlPanel {
  const aborter = new AbortController();
  let desired: DesiredView | undefined;
  let timer: number | undefined;

  const version = h('span', { class: 'muted', 'data-field': 'desired-version' });
  const table = h('div', { class: 'table-wrap' });
  const desiredMessage = h('p', { class: 'message', role: 'status', 'data-field': 'desired-message' });
  const keyInput = h('input', {
    id: 'desired-key',
    name: 'key',
    required: true,
    autocomplete: 'off',
    placeholder: 'reportIntervalS',
  });
  const valueInput = h('input', {
    id: 'desired-value',
    name: 'value',
    autocomplete: 'off',
    placeholder: '10',
  });
  const desiredForm = h(
    'form',
    { class: 'toolbar', 'data-testid': 'desired-form', onsubmit: (ev: Event) => void submitDesired(ev) },
    h('label', { for: 'desired-key' }, 'Key', keyInput),
    h('label', { for: 'desired-value' }, 'Value', valueInput),
    h('button', { type: 'submit' }, 'Set'),
    h('span', { class: 'muted' }, 'JSON values as JSON; null removes the key'),
  );

  const nameInput = h('input', {
    id: 'command-name',
    name: 'name',
    required: true,
    list: 'command-names',
    autocomplete: 'off',
    value: 'ping',
  });
  const paramsInput = h('input', { id: 'command-params', name: 'params', autocomplete: 'off', value: '{}' });
  const timeoutInput = h('input', {
    id: 'command-timeout',
    name: 'timeout',
    autocomplete: 'off',
    value: '30s',
    size: 6,
  });
  const commandMessage = h('p', { class: 'message', role: 'status', 'data-field': 'command-message' });
  const commandForm = h(
    'form',
    { class: 'toolbar', 'data-testid': 'command-form', onsubmit: (ev: Event) => void submitCommand(ev) },
    h('label', { for: 'command-name' }, 'Command', nameInput),
    h('datalist', { id: 'command-names' }, h('option', { value: 'ping' }), h('option', { value: 'reboot' })),
    h('label', { for: 'command-params' }, 'Params', paramsInput),
    h('label', { for: 'command-timeout' }, 'Timeout', timeoutInput),
    h('button', { type: 'submit' }, 'Send command'),
  );
  const list = h('div', { class: 'table-wrap', 'data-testid': 'command-list' });

  function renderDesired(v: DesiredView): void {
    desired = v;
    setText(version, v.version === 0 ? 'none set' : `version ${v.version}`);
    const keys = Object.keys(v.state).sort();
    if (keys.length === 0) {
      table.replaceChildren(h('p', { class: 'muted' }, 'No desired state set.'));
      return;
    }
    const json = (value: unknown) => (value === undefined ? '—' : JSON.stringify(value));
    table.replaceChildren(
      h(
        'table',
        { class: 'desired' },
        h(
          'thead',
          {},
          h('tr', {}, ...['Key', 'Desired', 'Reported', ''].map((c) => h('th', { scope: 'col' }, c))),
        ),
        h(
          'tbody',
          {},
          ...keys.map((key) => {
            const pending = Object.hasOwn(v.delta, key);
            return h(
              'tr',
              { 'data-key': key, class: pending ? 'delta' : 'in-sync' },
              h('th', { scope: 'row' }, key),
              h('td', { 'data-field': 'desired' }, json(v.state[key])),
              h(
                'td',
                { 'data-field': 'reported' },
                json(Object.hasOwn(v.reported, key) ? v.reported[key] : undefined),
              ),
              h('td', { 'data-field': 'sync' }, pending ? 'not applied yet' : 'in sync'),
            );
          }),
        ),
      ),
    );
  }

  function renderCommands(commands: CommandView[]): void {
    if (commands.length === 0) {
      list.replaceChildren(h('p', { class: 'muted' }, 'No commands yet.'));
      return;
    }
    const answer = (c: CommandView) =>
      c.status === 'succeeded'
        ? JSON.stringify(c.result ?? {})
        : c.status === 'failed'
          ? (c.message ?? '')
          : '';
    list.replaceChildren(
      h(
        'table',
        { class: 'commands' },
        h(
          'thead',
          {},
          h('tr', {}, ...['Issued', 'Command', 'Status', 'Answer'].map((c) => h('th', { scope: 'col' }, c))),
        ),
        h(
          'tbody',
          {},
          ...commands.map((c) =>
            h(
              'tr',
              { 'data-command': c.id },
              h('td', {}, formatIso(c.issuedAt)),
              h('td', { 'data-field': 'name' }, c.name),
              h('td', {}, h('span', { class: `status ${c.status}`, 'data-field': 'status' }, c.status)),
              h('td', { 'data-field': 'answer' }, answer(c)),
            ),
          ),
        ),
      ),
    );
  }

  async function refresh(): Promise<void> {
    try {
      const [d, c] = await Promise.all([
        getJson<DesiredView>(desiredUrl(deviceId), aborter.signal),
        getJson<{ commands: CommandView[] }>(commandsUrl(deviceId, LIST_LIMIT), aborter.signal),
      ]);
      renderDesired(d);
      renderCommands(c.commands);
    } catch (err) {
      if (!isAbort(err)) setText(desiredMessage, `Could not load: ${String(err)}`);
    }
  }

  async function submitDesired(ev: Event): Promise<void> {
    ev.preventDefault();
    const key = keyInput.value.trim();
    if (key === '') return;
    const current = desired?.version ?? 0;
    try {
      const answer = await sendJson<DesiredView & { changed: boolean }>(
        'PUT',
        desiredUrl(deviceId),
        { [key]: parseValue(valueInput.value) },
        { 'if-match': `"${current}"` },
      );
      setText(desiredMessage, answer.changed ? `Set: version ${answer.version}.` : 'Nothing changed.');
      renderDesired(answer);
    } catch (err) {
      setText(
        desiredMessage,
        err instanceof ApiError && err.status === 409
          ? 'It was changed meanwhile: here is the current document. Set it again if you still want to.'
          : `Not set: ${err instanceof Error ? err.message : String(err)}`,
      );
      await refresh();
    }
  }

  async function submitCommand(ev: Event): Promise<void> {
    ev.preventDefault();
    const params = parseValue(paramsInput.value.trim() === '' ? '{}' : paramsInput.value);
    try {
      const issued = await sendJson<CommandView>('POST', commandsUrl(deviceId), {
        name: nameInput.value.trim(),
        params,
        timeout: timeoutInput.value.trim(),
      });
      setText(commandMessage, `Sent ${issued.name}: ${issued.status}.`);
      await refresh();
    } catch (err) {
      setText(commandMessage, `Not sent: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  void refresh();
  return {
    els: [
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'desired-h', 'data-testid': 'desired' },
        h('h2', { id: 'desired-h' }, 'Desired state ', version),
        table,
        desiredForm,
        desiredMessage,
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'commands-h', 'data-testid': 'commands' },
        h('h2', { id: 'commands-h' }, 'Commands'),
        commandForm,
        commandMessage,
        list,
      ),
    ],
    live(e) {
      // Command events change the list; desired changes and state reports change desired, reported and the delta.
      if (
        e.type === 'TelemetryRecorded' ||
        e.type === 'DeviceEventReported' ||
        e.type === 'DuplicateReceived'
      )
        return;
      timer ??= window.setTimeout(() => {
        timer = undefined;
        void refresh();
      }, REFRESH_MS);
    },
    destroy() {
      aborter.abort();
      clearTimeout(timer);
    },
  };
}
