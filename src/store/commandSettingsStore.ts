/**
 * The store's part for command settings (domain/commandSettings.ts): one row per project and
 * command name, kept whatever the catalogue does. Implemented once over SQLite and PostgreSQL in
 * commandSettingsSql.ts.
 */
import type { CommandSettings } from '../domain/commandSettings.js';
import type { Command } from '../domain/model.js';

export interface CommandSettingsStore {
  /** The settings of these commands of the project that anyone set (others have the defaults). */
  getMany(projectId: string, commands: readonly string[]): Promise<CommandSettings[]>;
  /** Those of `names` the project's catalogue has, each with its settings, in one read (a burst of runs needs both). */
  getCommandsWithSettings(projectId: string, names: readonly string[]): Promise<Array<{ command: Command; settings: CommandSettings }>>;
  /**
   * Writes every setting in one transaction: the settings row, and read_only_default and
   * max_concurrency on the catalogue row. False (and nothing written) when the project's
   * catalogue has no such command.
   */
  put(s: CommandSettings): Promise<boolean>;
}
