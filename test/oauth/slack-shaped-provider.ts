import type { TokenAnswer, TokenRequest } from './provider-token-server.js';

/**
 * Slack's `oauth.v2.access` with token rotation, as its documentation describes it, for
 * `startTokenServer`: every answer is HTTP 200 with `ok`; an install carries the bot token at the top
 * level and the installing user's under `authed_user`; a refresh (`grant_type=refresh_token`) answers
 * flat, for whichever token's refresh token was sent (`token_type` `bot` or `user`). Access tokens
 * last 12 hours and refresh tokens are single-use: a spent one is refused with
 * `invalid_refresh_token`, and counted, so a test can assert the vault never sends one twice.
 */

export type SlackFamily = 'bot' | 'user';

export interface SlackShapedProvider {
  handle(request: TokenRequest): TokenAnswer;
  /** The install answer (code exchange) for a new installation; its tokens become live. */
  install(): Record<string, unknown>;
  /** Refresh requests answered, per family. */
  refreshes: Record<SlackFamily, number>;
  /** Spent or unknown refresh tokens sent (the vault must never send one). */
  reused: string[];
  /** Tokens sent to auth.revoke. */
  revokedTokens: string[];
  /** Every access and refresh token issued, for the canary checks. */
  issued: Set<string>;
  /** The next refresh of this family fails like this (once). */
  failNext(family: SlackFamily, answer: TokenAnswer): void;
  /** Ends a family's grant: its live refresh token is refused from now on (the user revoked the app). */
  revoke(family: SlackFamily): void;
  /** The refresh token now live for a family. */
  live(family: SlackFamily): string | undefined;
}

export const slackShapedProvider = (client: { id: string; secret: string }): SlackShapedProvider => {
  const live = new Map<string, SlackFamily>();
  const spent = new Set<string>();
  const revoked = new Set<SlackFamily>();
  const failures = new Map<SlackFamily, TokenAnswer>();
  const issued = new Set<string>();
  const refreshes: Record<SlackFamily, number> = { bot: 0, user: 0 };
  const reused: string[] = [];
  const revokedTokens: string[] = [];
  let serial = 0;

  const issue = (family: SlackFamily) => {
    serial += 1;
    const accessToken = `xoxe.xox${family === 'bot' ? 'b' : 'p'}-1-${family}-${serial}`;
    const refreshToken = `xoxe-1-${family}-${serial}`;
    live.set(refreshToken, family);
    issued.add(accessToken).add(refreshToken);
    return { access_token: accessToken, refresh_token: refreshToken, expires_in: 43_200 };
  };
  const team = { id: 'T0001', name: 'Acme' };
  const refused = (error: string): TokenAnswer => ({ body: { ok: false, error } });

  return {
    refreshes,
    reused,
    issued,
    revokedTokens,
    install: () => ({
      ok: true,
      app_id: 'A0001',
      ...issue('bot'),
      token_type: 'bot',
      scope: 'chat:write,channels:read',
      bot_user_id: 'U0BOT',
      team,
      enterprise: null,
      is_enterprise_install: false,
      authed_user: { id: 'U1234', scope: 'search:read', ...issue('user'), token_type: 'user' },
    }),
    handle(request) {
      if (request.url === 'https://slack.com/api/auth.revoke') {
        revokedTokens.push(request.form.get('token') ?? '');
        return { body: { ok: true, revoked: true } };
      }
      if (request.url !== 'https://slack.com/api/oauth.v2.access') return refused('unknown_method');
      if (
        request.form.get('client_id') !== client.id ||
        request.form.get('client_secret') !== client.secret
      ) {
        return refused('invalid_client_id');
      }
      if (request.form.get('grant_type') !== 'refresh_token') return refused('invalid_grant_type');
      const token = request.form.get('refresh_token') ?? '';
      const family = live.get(token);
      if (!family) {
        if (spent.has(token)) reused.push(token);
        return refused('invalid_refresh_token');
      }
      if (revoked.has(family)) return refused('invalid_refresh_token');
      const failure = failures.get(family);
      if (failure) {
        failures.delete(family);
        return failure;
      }
      // Sent once, spent: even if the answer is lost on the way back.
      live.delete(token);
      spent.add(token);
      refreshes[family] += 1;
      return {
        body: {
          ok: true,
          app_id: 'A0001',
          ...issue(family),
          token_type: family,
          scope: family === 'bot' ? 'chat:write,channels:read' : 'search:read',
          ...(family === 'bot' ? { bot_user_id: 'U0BOT' } : {}),
          team,
          enterprise: null,
          is_enterprise_install: false,
        },
      };
    },
    failNext: (family, answer) => void failures.set(family, answer),
    revoke: (family) => void revoked.add(family),
    live: (family) => [...live].find(([, f]) => f === family)?.[0],
  };
};
