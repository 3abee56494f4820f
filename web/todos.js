// My todos (add, edit, complete, delete, filter, pages) and the shared view
// (my todos and those my department may read; others' are read-only).

import * as api from './api.js';
import { h, options, pager, CLEARANCES } from './dom.js';

const PAGE = 10;
const FILTERS = [['all', 'All'], ['open', 'Open'], ['done', 'Done']];
const VISIBILITY = { private: 'Private', department: 'My department' };
const SHARING = { private: 'Private', department: 'Department' };

function fields(todo = {}) {
  return [
    h('label', { class: 'field wide' }, 'Title',
      h('input', { name: 'title', required: true, maxlength: 200, value: todo.title ?? '' })),
    h('label', { class: 'field wide' }, 'Description (optional)',
      h('textarea', { name: 'description', rows: 2, maxlength: 10000, value: todo.description ?? '' })),
    h('label', { class: 'field' }, 'Visible to',
      h('select', { name: 'visibility' }, options(Object.keys(VISIBILITY), todo.visibility ?? 'private', (v) => VISIBILITY[v]))),
    h('label', { class: 'field' }, 'Clearance needed',
      h('select', { name: 'clearance_level' }, options(CLEARANCES, todo.clearance_level ?? 0))),
  ];
}

function valuesOf(form) {
  const el = form.elements;
  return {
    title: el.title.value.trim(),
    description: el.description.value.trim() || null,
    visibility: el.visibility.value,
    clearance_level: Number(el.clearance_level.value),
  };
}

export function todosView(root, { me, notice, fail, shared }) {
  const state = { filter: 'all', offset: 0 };
  const list = h('ul', { class: 'todos' });
  const footer = h('div', { class: 'list-footer' });

  const filterButtons = FILTERS.map(([value, label]) =>
    h('button', { type: 'button', 'aria-pressed': String(value === state.filter), onclick: () => setFilter(value) }, label));

  function setFilter(value) {
    state.filter = value;
    state.offset = 0;
    filterButtons.forEach((b, i) => b.setAttribute('aria-pressed', String(FILTERS[i][0] === value)));
    load();
  }

  async function load() {
    const query = { limit: PAGE, offset: state.offset };
    if (shared) query.shared = 'true';
    if (state.filter !== 'all') query.completed = String(state.filter === 'done');
    try {
      const { data, total } = await api.request('GET', '/api/todos', { query });
      if (data.length === 0 && state.offset > 0) {
        state.offset = Math.max(0, (Math.ceil(total / PAGE) - 1) * PAGE);
        return load();
      }
      list.replaceChildren(...data.map(item));
      if (data.length === 0) {
        list.append(h('li', { class: 'empty' }, shared ? 'Nothing is shared with you yet.' : 'No todos here yet.'));
      }
      footer.replaceChildren(...pager(state.offset, data.length, total, PAGE, (offset) => {
        state.offset = offset;
        load();
      }, 'todo'));
    } catch (error) {
      fail(error);
    }
  }

  /** Runs `action` on todo `id`, reloads the list and puts the focus back
   * on that todo (or the heading when it left the list). */
  async function act(id, action, done) {
    try {
      await action();
      if (done) notice(done);
      await load();
    } catch (error) {
      fail(error);
    }
    (list.querySelector(`li[data-id="${id}"] input`) ?? heading).focus();
  }

  function item(todo) {
    const mine = todo.owner === me.username;
    const li = h('li', { class: todo.completed ? 'todo done' : 'todo', 'data-id': todo.id });
    const id = `todo-${todo.id}`;

    const show = () => {
      const meta = h('p', { class: 'meta' },
        h('span', { class: `tag ${todo.visibility}` }, SHARING[todo.visibility]),
        h('span', { class: 'tag' }, `Clearance ${todo.clearance_level}`),
        mine ? null : h('span', { class: 'tag owner' }, `by ${todo.owner}`));
      const actions = mine
        ? h('div', { class: 'actions' },
          h('button', { type: 'button', 'aria-label': `Edit “${todo.title}”`, onclick: edit }, 'Edit'),
          h('button', { type: 'button', class: 'danger', 'aria-label': `Delete “${todo.title}”`, onclick: confirmDelete }, 'Delete'))
        : h('p', { class: 'hint' }, 'Read-only');
      li.replaceChildren(
        h('input', {
          type: 'checkbox', id, checked: todo.completed, disabled: !mine,
          onchange: (e) => act(todo.id, () => api.request('PATCH', `/api/todos/${todo.id}`, { body: { completed: e.target.checked } })),
        }),
        h('div', { class: 'body' },
          h('label', { for: id, class: 'title' }, todo.title),
          todo.description ? h('p', { class: 'description' }, todo.description) : null,
          meta),
        actions);
    };

    const edit = () => {
      const form = h('form', { class: 'edit', 'aria-label': `Edit “${todo.title}”` },
        h('div', { class: 'grid' }, fields(todo)),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'primary' }, 'Save'),
          h('button', { type: 'button', onclick: cancel }, 'Cancel')));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        act(todo.id, () => api.request('PATCH', `/api/todos/${todo.id}`, { body: valuesOf(form) }), 'Saved.');
      });
      form.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') cancel();
      });
      li.replaceChildren(form);
      form.elements.title.focus();
    };

    const cancel = () => {
      show();
      li.querySelector('.actions button')?.focus();
    };

    const confirmDelete = () => {
      const keep = h('button', { type: 'button', onclick: cancel }, 'Keep');
      li.querySelector('.actions').replaceChildren(
        h('span', { class: 'confirm' }, 'Delete this todo?'),
        h('button', { type: 'button', class: 'danger', onclick: () => act(todo.id, () => api.request('DELETE', `/api/todos/${todo.id}`), `Deleted “${todo.title}”.`) }, 'Yes, delete'),
        keep);
      keep.focus();
    };

    show();
    return li;
  }

  const heading = h('h1', { tabindex: -1 }, shared ? 'Shared with me' : 'My todos');
  root.append(heading);

  if (shared) {
    root.append(h('p', { class: 'lead' },
      'Your todos and those your department shares with you. Only their owner may change them.'));
  } else {
    const form = h('form', { class: 'card add', 'aria-label': 'New todo' },
      h('div', { class: 'grid' }, fields()),
      h('button', { type: 'submit', class: 'primary' }, 'Add todo'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const todo = valuesOf(form);
      try {
        await api.request('POST', '/api/todos', { body: todo });
        form.reset();
        notice(`Added “${todo.title}”.`);
        state.offset = 0;
        await load();
      } catch (error) {
        fail(error);
      }
      form.elements.title.focus();
    });
    root.append(form);
  }

  root.append(
    h('div', { class: 'filters', role: 'group', 'aria-label': 'Show' }, filterButtons),
    list,
    footer);
  load();
}
