/** Where the test suite finds this machine's real services; overridable for other machines. */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/chatedge_test";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_REDIS_TOKEN = "test-redis-token";
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789";
