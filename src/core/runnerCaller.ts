/** Who is calling on the runner side of the server: a checked runner key, its project, and from where. */
import type { Actor, Project, RunnerKey } from '../domain/model.js';

export interface RunnerCaller {
  key: RunnerKey;
  project: Project;
  address: string;
  /** v2: the runner's own id, once it said hello. */
  instance?: string;
  actor: Actor;
}
