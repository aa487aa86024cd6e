/**
 * The store's part for command settings (domain/commandSettings.ts): one row per project and
 * command name, kept whatever the catalogue does. Implemented once over SQLite and PostgreSQL in
 * commandSettingsSql.ts.
 */
import type { CommandSettings } from '../domain/commandSettings.js';
import type { Command } from '../domain/model.js';

/** The settings kept on a command's catalogue row. */
export type CatalogueSettings = Pick<Command, 'name' | 'maxConcurrency' | 'readOnlyDefault'>;

export interface CommandSettingsStore {
  /**
   * The settings of these commands of the project that anyone set (others have the defaults).
   * `catalogue`: their catalogue rows, when the caller read them already (saves reading them again).
   */
  getMany(projectId: string, commands: readonly string[], catalogue?: readonly CatalogueSettings[]): Promise<CommandSettings[]>;
  /**
   * Writes every setting in one transaction: the settings row, and read_only_default and
   * max_concurrency on the catalogue row. False (and nothing written) when the project's
   * catalogue has no such command.
   */
  put(s: CommandSettings): Promise<boolean>;
}
