// Where the test suite finds this machine's real services; TEST_POSTGRES_URL and TEST_REDIS_URL override.
/** The Postgres server the tests use; each test run makes its own database there (see global-setup.ts). */
export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const TEST_REDIS_TOKEN = "test-redis-token";
export const TEST_ADMIN_TOKEN = "test-admin-token-0123456789";
