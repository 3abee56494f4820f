// The admins' page: every user, a page at a time, with role, scopes,
// department, clearance, disabling and deleting. The API decides: its
// refusals (403, 409, 422) are shown as they come.

import * as api from './api.js';
import { h, options, pager, CLEARANCES } from './dom.js';

const PAGE = 20;

export function usersView(root, { me, notice, fail, reloadMe }) {
  let offset = 0;
  const list = h('ul', { class: 'users' });
  const footer = h('div', { class: 'list-footer' });
  const heading = h('h1', { tabindex: -1 }, 'Users');
  root.append(heading, list, footer);

  async function load() {
    try {
      const { data, total } = await api.request('GET', '/api/users', { query: { limit: PAGE, offset } });
      if (data.length === 0 && offset > 0) {
        offset = Math.max(0, (Math.ceil(total / PAGE) - 1) * PAGE);
        return load();
      }
      list.replaceChildren(...data.map(card));
      footer.replaceChildren(...pager(offset, data.length, total, PAGE, (o) => {
        offset = o;
        load();
      }, 'user'));
    } catch (error) {
      if (error.status === 403) {
        notice(`Only administrators may see the users page (${error.message}).`, 'error');
        list.replaceChildren();
      } else {
        fail(error);
      }
    }
  }

  function card(user) {
    const li = h('li', { class: 'card user', 'data-id': user.id });
    const message = h('p', { class: 'message', 'aria-live': 'polite' });

    const say = (text, kind = 'info') => {
      message.textContent = text;
      message.className = `message ${kind}`;
    };

    /** Runs the request; a refusal stays next to the user it concerns. */
    const attempt = async (action, done) => {
      say('');
      try {
        const changed = await action();
        if (user.id === me.id) await reloadMe();
        return changed;
      } catch (error) {
        if (!error.ended) say(error.message, 'error');
        return null;
      } finally {
        if (done) done();
      }
    };

    const replaceWith = (changed, text) => {
      if (!changed) return;
      const next = card(changed);
      li.replaceWith(next);
      next.querySelector('.message').textContent = text;
      next.querySelector('button[type=submit]').focus();
    };

    const form = h('form', { 'aria-label': `User ${user.username}` });
    const role = h('select', { name: 'role' }, options(['user', 'admin'], user.role));
    const read = h('input', { type: 'checkbox', name: 'read', checked: user.scopes.includes('read') });
    const write = h('input', { type: 'checkbox', name: 'write', checked: user.scopes.includes('write') });
    const department = h('input', { name: 'department', maxlength: 100, value: user.department ?? '' });
    const clearance = h('select', { name: 'clearance_level' }, options(CLEARANCES, user.clearance_level));

    form.append(
      h('div', { class: 'who' },
        h('strong', { class: 'username' }, user.username),
        h('span', null, user.name),
        user.email ? h('span', { class: 'hint' }, user.email) : null,
        user.id === me.id ? h('span', { class: 'tag' }, 'you') : null,
        user.role === 'admin' ? h('span', { class: 'tag admin' }, 'admin') : null,
        user.disabled ? h('span', { class: 'tag disabled' }, 'disabled') : null),
      h('div', { class: 'grid' },
        h('label', { class: 'field' }, 'Role', role),
        h('fieldset', { class: 'field scopes' },
          h('legend', null, 'Scopes'),
          h('label', null, read, ' read'),
          h('label', null, write, ' write')),
        h('label', { class: 'field' }, 'Department', department),
        h('label', { class: 'field' }, 'Clearance', clearance)),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: toggleDisabled }, user.disabled ? 'Enable' : 'Disable'),
        h('button', { type: 'button', class: 'danger', onclick: confirmDelete }, 'Delete')),
      message);

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const patch = {};
      if (role.value !== user.role) patch.role = role.value;
      const scopes = [read.checked && 'read', write.checked && 'write'].filter(Boolean);
      if (scopes.join(' ') !== user.scopes.join(' ')) patch.scopes = scopes;
      const dept = department.value.trim() || null;
      if (dept !== user.department) patch.department = dept;
      if (Number(clearance.value) !== user.clearance_level) patch.clearance_level = Number(clearance.value);
      if (Object.keys(patch).length === 0) return say('Nothing to save.');
      const changed = await attempt(async () => (await api.request('PATCH', `/api/users/${user.id}`, { body: patch })).data);
      replaceWith(changed, `Saved ${user.username}.`);
    });

    async function toggleDisabled() {
      const changed = await attempt(async () =>
        (await api.request('PATCH', `/api/users/${user.id}`, { body: { disabled: !user.disabled } })).data);
      replaceWith(changed, changed?.disabled ? `${user.username} is disabled.` : `${user.username} is enabled.`);
    }

    function confirmDelete() {
      const actions = form.querySelector('.actions');
      const before = [...actions.children];
      const keep = h('button', { type: 'button', onclick: () => actions.replaceChildren(...before) }, 'Keep');
      actions.replaceChildren(
        h('span', { class: 'confirm' }, `Delete ${user.username} and their todos?`),
        h('button', {
          type: 'button', class: 'danger', onclick: async () => {
            const gone = await attempt(async () => {
              await api.request('DELETE', `/api/users/${user.id}`);
              return true;
            }, () => actions.replaceChildren(...before));
            if (gone) {
              notice(`Deleted ${user.username}.`);
              await load();
              heading.focus();
            }
          },
        }, 'Yes, delete'),
        keep);
      keep.focus();
    }

    li.append(form);
    return li;
  }

  load();
}
