/** Table shapes as the database holds them (snake_case, booleans as 0/1, times as unix ms). */
import type { Generated } from 'kysely';

export interface UsersTable {
  id: string;
  email: string;
  password_hash: string;
  is_admin: number;
  created_at: number;
  disabled_at: number | null;
  removed_at: number | null;
  must_change_password: number;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  token_hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
  project_ids: string | null;
  read_only: number;
  expires_at: number | null;
}

export interface SessionsTable {
  id_hash: string;
  user_id: string;
  csrf_token: string;
  address: string | null;
  created_at: number;
  expires_at: number;
}

export interface ProjectsTable {
  id: string;
  name: string;
  commands_hash: string;
  created_at: number;
}

export interface RunnerKeysTable {
  id: string;
  project_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  created_at: number;
  revoked_at: number | null;
}

export interface RequestNoncesTable {
  key_id: string;
  nonce: string;
  seen_at: number;
  fingerprint: string;
  response_status: number | null;
  response_body: string | null;
}

export interface RunnersTable {
  id: string;
  project_id: string;
  key_id: string;
  address: string;
  protocol: string;
  instance: string;
  hostname: string;
  max_concurrency: number | null;
  runner_version: string;
  python_version: string;
  django_version: string;
  commands_hash: string;
  first_seen_at: number;
  last_seen_at: number;
  stopped_at: number | null;
}

export interface CommandsTable {
  project_id: string;
  name: string;
  app_label: string;
  help_text: string;
  schema_json: string | null;
  refused: string | null;
  max_concurrency: number | null;
  synced_at: number;
  read_only_default: number;
  django_read_only: number;
}

export interface ExecutionsTable {
  id: string;
  project_id: string;
  command: string;
  args: string;
  argv_json: string;
  status: string;
  status_reason: string | null;
  exit_code: number | null;
  timeout_seconds: number;
  metadata_only: number;
  created_at: number;
  created_by_type: string;
  created_by_id: string | null;
  created_by_label: string;
  runner_id: string | null;
  dispatched_at: number | null;
  started_at: number | null;
  finished_at: number | null;
  cancel_requested_at: number | null;
  cancel_force: number;
  cancel_reason: string | null;
  output_bytes: number;
  output_chunks: number;
  output_last_seq: number;
  output_expected_seq: number | null;
  late_status: string | null;
  late_exit_code: number | null;
  runner_last_seq: number;
  runner_chunks: number;
  start_deadline: number | null;
  schedule_id: string | null;
  read_only: number;
}

export interface V1ChunksTable {
  execution_id: string;
  chunk_number: number;
  parts_stored: number;
  complete: number;
}

export interface OutputChunksTable {
  execution_id: string;
  seq: number;
  stream: string;
  data: string;
  line_times_json: string;
  received_at: number;
}

export interface AuditEventsTable {
  id: Generated<number>;
  at: number;
  actor_type: string;
  actor_id: string | null;
  actor_label: string;
  address: string | null;
  action: string;
  project_id: string | null;
  execution_id: string | null;
  outcome: string;
  details_json: string;
}

export interface Database {
  users: UsersTable;
  api_tokens: ApiTokensTable;
  sessions: SessionsTable;
  projects: ProjectsTable;
  runner_keys: RunnerKeysTable;
  request_nonces: RequestNoncesTable;
  runners: RunnersTable;
  commands: CommandsTable;
  executions: ExecutionsTable;
  output_chunks: OutputChunksTable;
  audit_events: AuditEventsTable;
  login_attempts: LoginAttemptsTable;
  v1_chunks: V1ChunksTable;
}

export interface LoginAttemptsTable {
  key_hash: string;
  attempts: number;
  window_ends_at: number;
}
