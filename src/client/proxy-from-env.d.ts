// proxy-from-env ships no types: the one function DCX uses.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, '' when none or NO_PROXY matches it. */
  export function getProxyForUrl(url: string | URL): string;
}
