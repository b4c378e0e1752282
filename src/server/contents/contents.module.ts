import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module.js';
import { AppConfig } from '../config/app-config.js';
import { uploadsModule } from '../http/uploads.js';
import { Content } from './content.entity.js';
import { ContentRepository } from './content.repository.js';
import { ContentStorageModule } from './content-storage.module.js';
import { ContentsController } from './contents.controller.js';
import { ContentsService } from './contents.service.js';
import { MediaTypeDetector } from './media-type.js';
import { ContentUploadEngine } from './upload-storage-engine.js';

/** Exports ContentsService (findDeliverable) and, through ContentStorageModule, ContentStorage (openRead, pathOf). */
@Module({
  imports: [
    TypeOrmModule.forFeature([Content]),
    AuthModule,
    ContentStorageModule,
    uploadsModule({
      imports: [ContentStorageModule],
      inject: [ContentUploadEngine, AppConfig],
      useFactory: (engine: ContentUploadEngine, config: AppConfig) => ({
        storage: engine,
        defParamCharset: 'utf8',
        limits: { fileSize: config.maxUploadBytes, files: 1, fields: 4, fieldSize: 1024, parts: 8 },
      }),
    }),
  ],
  controllers: [ContentsController],
  providers: [ContentsService, ContentRepository, MediaTypeDetector],
  exports: [ContentsService, ContentRepository, ContentStorageModule],
})
export class ContentsModule {}
