/**
 * The vault as an OAuth client identified by a Client ID Metadata Document (draft-ietf-oauth-client-id-
 * metadata-document, the MCP authorization specification's preferred registration): its `client_id` is
 * an https URL the vault serves, and the JSON at that URL describes the client. An authorization server
 * that advertises `client_id_metadata_document_supported` fetches it when it first sees the client_id,
 * so nothing is registered in advance and nothing is stored at the server per vault.
 *
 * The vault is a public client there (`token_endpoint_auth_method: "none"`): the document is public by
 * design and may hold no secret, so the code is bound to its request by PKCE S256 alone. Discovery only
 * chooses this way when the server supports S256 (mcp-discovery.ts).
 */

/** Where the vault serves its document; the same for every app and namespace (one client, one callback). */
export const clientMetadataPath = '/v1/oauth/client-metadata.json';

/**
 * The vault's client_id as a metadata document URL, or undefined when its public URL is not https:
 * the draft (and every server that implements it) accepts only an https client_id.
 */
export const clientIdMetadataUrlFor = (publicUrl: string): string | undefined => {
  const base = publicUrl.replace(/\/+$/, '');
  return URL.canParse(base) && new URL(base).protocol === 'https:'
    ? `${base}${clientMetadataPath}`
    : undefined;
};

export interface ClientMetadataDocument {
  client_id: string;
  client_name: string;
  client_uri: string;
  redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: 'none';
}

/** The document itself: public metadata only (the draft forbids `client_secret`; the vault has none here). */
export const clientMetadataDocument = (input: {
  clientId: string;
  publicUrl: string;
  redirectUri: string;
  clientName: string;
}): ClientMetadataDocument => ({
  client_id: input.clientId,
  client_name: input.clientName,
  client_uri: input.publicUrl.replace(/\/+$/, ''),
  redirect_uris: [input.redirectUri],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
});
