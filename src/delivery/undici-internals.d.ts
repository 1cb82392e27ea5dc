// undici's internal files that src/delivery/undici.ts loads instead of its whole entry. They are
// CommonJS modules with no declarations of their own; their shapes are checked at run time.
declare module 'undici/lib/dispatcher/agent.js' {
  const Agent: unknown;
  export default Agent;
}
declare module 'undici/lib/dispatcher/client.js' {
  const Client: unknown;
  export default Client;
}
declare module 'undici/lib/api/api-request.js' {
  const request: unknown;
  export default request;
}
