// Datadog sites, from the `servers` list of Datadog's API v2 spec (shared/spec/endpoint.md).
export const DATADOG_SITES = [
  'datadoghq.com',
  'us3.datadoghq.com',
  'us5.datadoghq.com',
  'ap1.datadoghq.com',
  'ap2.datadoghq.com',
  'uk1.datadoghq.com',
  'datadoghq.eu',
  'ddog-gov.com',
  'us2.ddog-gov.com',
] as const;

export type DatadogSite = (typeof DATADOG_SITES)[number];

export function endpointForSite(site: DatadogSite): string {
  return `https://api.${site}/api/v2/ci/pipeline`;
}
