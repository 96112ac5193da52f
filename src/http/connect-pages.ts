import type { ConnectPageView } from '../oauth/connect-service.js';

/**
 * The vault's own pages of a connect session: plain HTML, every value escaped, nothing loaded from
 * anywhere. They never show a token; the link's own token is only in the form's action.
 */
const escape = (value: string) =>
  value.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

const layout = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
  `<title>${escape(title)} · Token Vault</title><style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}` +
  `code{background:#f3f3f3;padding:0 .25rem}button{font-size:1rem;padding:.5rem 1.25rem}</style></head><body>${body}</body></html>`;

export const consentPage = (view: ConnectPageView, action: string) => {
  const scopes = view.scopes.length
    ? `<ul>${view.scopes.map((s) => `<li><code>${escape(s)}</code></li>`).join('')}</ul>`
    : '<p>No particular scopes.</p>';
  const next = view.device
    ? `<p>Enter the code <strong><code>${escape(view.device.userCode)}</code></strong> at ` +
      `<a href="${escape(view.device.verificationUriComplete ?? view.device.verificationUri)}">${escape(view.device.verificationUri)}</a>.</p>`
    : `<form method="post" action="${escape(action)}"><button type="submit">Continue to ${escape(view.provider)}</button></form>`;
  return layout(
    'Connect',
    `<h1>Connect ${escape(view.provider)}</h1>` +
      `<p>The agent <strong>${escape(view.agent)}</strong> asks to act for <strong>${escape(view.user)}</strong> ` +
      `with the OAuth app <code>${escape(view.app)}</code>, with these scopes:</p>${scopes}` +
      `<p>The tokens stay in the vault; the agent gets only what its grant allows. If you did not expect this, close this page.</p>${next}`,
  );
};

export const successPage = (done: { app: string; user: string; credential: string }) =>
  layout(
    'Connected',
    `<h1>Connected</h1><p><code>${escape(done.app)}</code> is connected for <strong>${escape(done.user)}</strong> ` +
      `(credential <code>${escape(done.credential)}</code>). You can close this page.</p>`,
  );

export const failurePage = (code: string, message: string) =>
  layout(
    'Not connected',
    `<h1>Not connected</h1><p>${escape(message)}</p><p>Code: <code data-error-code="${escape(code)}">${escape(code)}</code></p>`,
  );

/** Headers of every page: never cached, never framed, and the link's token never sent on as a referrer. */
export const pageHeaders = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https: http:",
} as const;
