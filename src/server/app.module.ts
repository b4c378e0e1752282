import { Module } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';
import { AppConfigModule } from './config/config.module.js';
import { ContentsModule } from './contents/contents.module.js';
import { DatabaseModule } from './database/database.module.js';
import { KeysModule } from './keys/keys.module.js';

@Module({
  imports: [
    AppConfigModule,
    DatabaseModule,
    AuthModule,
    KeysModule,
    ContentsModule,
    // ---- lead: DeliveriesModule and ConfirmationModule go here ----
    // DeliveriesModule,
    // ConfirmationModule,
    // ----------------------------------------------------------------
  ],
})
export class AppModule {}
