// Kept in step with package.json by test/package.test.ts.
export const PACKAGE_NAME = 'datadog-ci-pipeline-exporter';
export const VERSION = '0.1.0';
