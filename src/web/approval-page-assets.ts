/**
 * The approval page (docs/approvals.md, "The approval page"): static HTML, its script and its service
 * worker. The page holds no secret of the vault: it asks the approver for their admin token, keeps it
 * in the tab's sessionStorage only, and calls the admin REST API with it, like the CLI does.
 */

export const approvalPageHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Token Vault — approvals</title>
<style>
body { font: 15px system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; }
li { margin: .75rem 0; padding: .75rem; border: 1px solid #ccc; border-radius: 6px; list-style: none; }
button { margin-right: .5rem; } #status { color: #555; } ul { padding: 0; }
</style>
</head>
<body>
<h1>Pending approvals</h1>
<form id="signin">
  <label>Admin token (role approver) <input id="token" type="password" autocomplete="off" size="50"></label>
  <button type="submit">Sign in</button>
</form>
<p><button id="subscribe" type="button" hidden>Notify this browser (Web Push)</button> <span id="status"></span></p>
<ul id="pending"></ul>
<script type="module" src="/approvals/app.js"></script>
</body>
</html>
`;

export const approvalPageScript = `const tokenKey = 'tokenvault-approver-token';
const $ = (id) => document.getElementById(id);
const status = (text) => { $('status').textContent = text; };

const api = async (method, path, body) => {
  const response = await fetch(path, {
    method,
    headers: { authorization: 'Bearer ' + sessionStorage.getItem(tokenKey), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error ? data.error.message + ' (' + data.error.code + ')' : String(response.status));
  return data;
};

const render = (items) => {
  const list = $('pending');
  list.replaceChildren();
  if (items.length === 0) status('Nothing waits for a decision.');
  for (const a of items) {
    const li = document.createElement('li');
    li.id = 'approval-' + a.id;
    const text = document.createElement('div');
    text.textContent = a.agent + ' asks to use ' + a.credential + (a.end_user ? ' for ' + a.end_user : '') +
      ' (policy ' + a.policy + ', covers ' + a.covers + '); expires ' + a.expires_at;
    li.append(text);
    for (const decision of ['approve', 'deny']) {
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.decision = decision;
      button.dataset.id = a.id;
      button.textContent = decision === 'approve' ? 'Approve' : 'Deny';
      button.addEventListener('click', async () => {
        try {
          const decided = await api('POST', '/v1/admin/approvals/' + encodeURIComponent(a.id) + '/' + decision, { via: 'page' });
          await load();
          status('Approval ' + decided.id + ' ' + decided.state + '.');
        } catch (error) { status(error.message); }
      });
      li.append(button);
    }
    list.append(li);
  }
};

const load = async () => {
  if (!sessionStorage.getItem(tokenKey)) return;
  try {
    render((await api('GET', '/v1/admin/approvals?state=pending')).items);
    $('subscribe').hidden = !('serviceWorker' in navigator && 'PushManager' in window);
  } catch (error) { status(error.message); }
};

$('signin').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(tokenKey, $('token').value.trim());
  $('token').value = '';
  void load();
});

$('subscribe').addEventListener('click', async () => {
  try {
    const { public_key } = await api('GET', '/v1/admin/approvals/push/key');
    const registration = await navigator.serviceWorker.register('/approvals/sw.js', { scope: '/approvals/' });
    await navigator.serviceWorker.ready;
    const key = Uint8Array.from(atob(public_key.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    const subscription = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    await api('POST', '/v1/admin/approvals/push/subscriptions', subscription.toJSON());
    status('This browser will be notified of new approval requests.');
  } catch (error) { status('Could not subscribe: ' + error.message); }
});

navigator.serviceWorker?.addEventListener('message', () => void load());
void load();
`;

/** Shows each push as a notification; its actions open the signed link's confirmation page. */
export const approvalServiceWorker = `self.addEventListener('push', (event) => {
  const message = event.data ? event.data.json() : { title: 'Approval requested', body: '', links: [] };
  const link = message.links && message.links[0];
  event.waitUntil(self.registration.showNotification(message.title, {
    body: message.body,
    tag: message.approval_id,
    requireInteraction: true,
    data: { page: message.page_url, approve: link && link.approve_url, deny: link && link.deny_url },
    actions: link ? [{ action: 'approve', title: 'Approve' }, { action: 'deny', title: 'Deny' }] : [],
  }));
  event.waitUntil(self.clients.matchAll().then((clients) => clients.forEach((c) => c.postMessage('approval'))));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  const url = (event.action && data[event.action]) || data.page || '/approvals';
  event.waitUntil(self.clients.openWindow(url));
});
`;

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The confirmation a signed link opens: one button that POSTs the decision (a GET decides nothing). */
export const linkConfirmationHtml = (view: {
  token: string;
  decision: 'approve' | 'deny';
  approver: string;
  summary: string;
}): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Token Vault — ${view.decision}</title></head>
<body style="font: 15px system-ui, sans-serif; margin: 2rem auto; max-width: 40rem">
<h1>${view.decision === 'approve' ? 'Approve' : 'Deny'} this request?</h1>
<p>${escapeHtml(view.summary)}</p>
<p>Deciding as <strong>${escapeHtml(view.approver)}</strong>. A decision is final.</p>
<form method="post" action="/approvals/link">
<input type="hidden" name="t" value="${escapeHtml(view.token)}">
${view.decision === 'deny' ? '<label>Reason <input name="reason" maxlength="500"></label>' : ''}
<button type="submit" id="confirm">${view.decision === 'approve' ? 'Approve' : 'Deny'}</button>
</form>
</body></html>
`;

export const linkResultHtml = (text: string): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Token Vault</title></head>
<body style="font: 15px system-ui, sans-serif; margin: 2rem auto; max-width: 40rem"><p id="result">${escapeHtml(text)}</p></body></html>
`;
