import { Module } from '@nestjs/common';
import { AuthModule } from './auth/auth.module.js';
import { AppConfigModule } from './config/config.module.js';
import { ConfirmationModule } from './confirmation/confirmation.module.js';
import { ContentsModule } from './contents/contents.module.js';
import { DatabaseModule } from './database/database.module.js';
import { DeliveriesModule } from './deliveries/deliveries.module.js';
import { GroupsModule } from './groups/groups.module.js';
import { DistributionsModule } from './distributions/distributions.module.js';
import { InboxModule } from './inbox/inbox.module.js';
import { KeysModule } from './keys/keys.module.js';
import { PagesModule } from './pages/pages.module.js';
import { RecipientsModule } from './recipients/recipients.module.js';
import { ObservabilityModule } from './observability/observability.module.js';
import { WebhooksModule } from './webhooks/webhooks.module.js';

@Module({
  imports: [
    AppConfigModule,
    DatabaseModule,
    AuthModule,
    KeysModule,
    ContentsModule,
    DeliveriesModule,
    ConfirmationModule,
    PagesModule,
    ObservabilityModule,
    WebhooksModule,
    RecipientsModule,
    GroupsModule,
    DistributionsModule,
    InboxModule,
  ],
})
export class AppModule {}
