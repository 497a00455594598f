import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '@gw/config';
import { newSecret, safeEqualHex, sha256Hex } from '@gw/common';
import { SettingsRepository } from '@gw/db';

const SETTING = 'admin_token_sha256';

/**
 * The root admin credential. ADMIN_TOKEN wins when set; otherwise the first start generates one,
 * prints it once, and keeps only its sha256 in the settings table.
 */
@Injectable()
export class AdminTokenService implements OnApplicationBootstrap {
  private readonly logger = new Logger('AdminToken');
  private hash?: string;

  constructor(
    @Inject(APP_CONFIG) private readonly cfg: AppConfig,
    private readonly settings: SettingsRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.cfg.adminToken) {
      this.hash = sha256Hex(this.cfg.adminToken);
      return;
    }
    const stored = await this.settings.get(SETTING);
    if (stored) {
      this.hash = stored;
      return;
    }
    const token = newSecret('adm-', 24);
    if (await this.settings.setIfAbsent(SETTING, sha256Hex(token))) {
      this.hash = sha256Hex(token);
      const line = '='.repeat(78);
      // Printed once, on purpose to stdout: it is the only time anyone sees it.
      process.stdout.write(
        `\n${line}\n  Generated root admin token (shown once; only its hash is stored):\n\n    ${token}\n\n` +
          `  export ADMIN_TOKEN=${token}\n  Set ADMIN_TOKEN yourself to choose one; it then takes precedence.\n${line}\n\n`,
      );
    } else {
      this.hash = await this.settings.get(SETTING);
    }
  }

  isRoot(token: string): boolean {
    return !!this.hash && safeEqualHex(sha256Hex(token), this.hash);
  }
}
