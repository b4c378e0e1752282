import { Module } from '@nestjs/common';
import { ContentStorage } from './content-storage.js';
import { ContentUploadEngine } from './upload-storage-engine.js';

@Module({
  providers: [ContentStorage, ContentUploadEngine],
  exports: [ContentStorage, ContentUploadEngine],
})
export class ContentStorageModule {}
