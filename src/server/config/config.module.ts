import { Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig, loadAppConfig } from './app-config.js';
import { ENVIRONMENT_VARIABLES } from './environment.js';

/**
 * Reads the environment (and an optional .env file) through @nestjs/config, validates it once
 * with class-validator and provides the typed `AppConfig` to every module.
 */
@Global()
@Module({
  imports: [ConfigModule.forRoot({ cache: true })],
  providers: [
    {
      provide: AppConfig,
      inject: [ConfigService],
      useFactory: (configService: ConfigService): AppConfig =>
        loadAppConfig(Object.fromEntries(ENVIRONMENT_VARIABLES.map((name) => [name, configService.get<string>(name)]))),
    },
  ],
  exports: [AppConfig],
})
export class AppConfigModule {}
