// The page: signing in and out, the header, and switching between views
// (#/todos, #/shared, #/users).

import * as api from './api.js';
import { todosView } from './todos.js';
import { usersView } from './users.js';

const $ = (id) => document.getElementById(id);
let me = null;

/** A message under the header; `kind` is 'info' or 'error'. */
function notice(text, kind = 'info') {
  const el = $('notice');
  el.textContent = text ?? '';
  el.className = `notice ${kind}`;
  el.hidden = !text;
}

/** Shows an error unless the session ended (the sign-in form says so then). */
function fail(error) {
  if (!error.ended) notice(error.message, 'error');
}

function showSignedOut(message, kind = 'info') {
  me = null;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('view').replaceChildren();
  $('signed-out').hidden = false;
  notice(message, kind);
  $('in-username').focus();
}

async function loadMe() {
  me = (await api.request('GET', '/api/users/me')).data;
  $('who-name').textContent = me.role === 'admin' ? `${me.name} (admin)` : me.name;
  $('users-link').hidden = me.role !== 'admin';
  $('signed-out').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
}

const views = {
  todos: (root) => todosView(root, { me, notice, fail, shared: false }),
  shared: (root) => todosView(root, { me, notice, fail, shared: true }),
  users: (root) => usersView(root, { me, notice, fail, reloadMe }),
};

function route() {
  if (!me) return;
  let name = location.hash.replace(/^#\/?/, '');
  if (!(name in views)) name = 'todos';
  for (const link of $('nav').querySelectorAll('a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  notice('');
  const root = document.createElement('section');
  $('view').replaceChildren(root);
  views[name](root);
  root.querySelector('h1')?.focus();
}

/** After an admin changed their own account: the header and the menu follow. */
async function reloadMe() {
  await loadMe();
  if (me.role !== 'admin' && location.hash === '#/users') location.hash = '#/todos';
}

async function enter() {
  await loadMe();
  route();
}

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    await api.signIn($('in-username').value.trim(), $('in-password').value);
    form.reset();
    await enter();
  } catch (error) {
    notice(error.message, 'error');
    $('in-password').focus();
  } finally {
    button.disabled = false;
  }
});

$('sign-up').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector('button');
  const account = {
    username: $('up-username').value.trim(),
    name: $('up-name').value.trim(),
    password: $('up-password').value,
  };
  const email = $('up-email').value.trim();
  if (email) account.email = email;
  button.disabled = true;
  try {
    await api.register(account);
    await api.signIn(account.username, account.password);
    form.reset();
    await enter();
    notice(`Welcome, ${account.name}! Your account is ready.`);
  } catch (error) {
    notice(error.message, 'error');
  } finally {
    button.disabled = false;
  }
});

$('sign-out').addEventListener('click', async () => {
  try {
    await api.signOut();
    showSignedOut('You are signed out.');
  } catch (error) {
    showSignedOut(`Signed out here, but the server could not be told: ${error.message}`, 'error');
  }
});

api.onSessionEnd((message) => showSignedOut(message, 'error'));
window.addEventListener('hashchange', route);

if (api.hasSession()) {
  api.refresh().then(enter).catch((error) => {
    if (!error.ended) showSignedOut(error.message, 'error');
  });
} else {
  showSignedOut();
}
