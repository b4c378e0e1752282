import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  ParseUUIDPipe,
  Post,
  UploadedFile,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiConsumes,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { CONTENT_ACCESS } from './content.entity.js';
import { AdminGuard } from '../auth/admin.guard.js';
import { FileInterceptor } from '../http/uploads.js';
import { ContentResponseDto, CreateContentDto } from './content.dto.js';
import { ContentsService } from './contents.service.js';
import type { StoredUpload } from './upload-storage-engine.js';

/** Admin API for contents. Uploads are streamed by ContentUploadEngine (see ContentsModule). */
@ApiTags('contents')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/contents')
@UseGuards(AdminGuard)
export class ContentsController {
  constructor(private readonly contents: ContentsService) {}

  @Post()
  @ApiConsumes('multipart/form-data')
  @ApiBody({
    schema: {
      type: 'object',
      required: ['file'],
      properties: { file: { type: 'string', format: 'binary' }, access: { type: 'string', enum: [...CONTENT_ACCESS], default: 'public' } },
    },
  })
  @ApiCreatedResponse({ type: ContentResponseDto, description: 'the stored content; for token access, with its access token (shown once)' })
  @UseInterceptors(FileInterceptor('file'))
  create(@UploadedFile() file: StoredUpload | undefined, @Body() dto: CreateContentDto): Promise<ContentResponseDto> {
    return this.contents.create(file, dto);
  }

  @Get()
  @ApiOkResponse({ type: [ContentResponseDto] })
  list(): Promise<ContentResponseDto[]> {
    return this.contents.list();
  }

  @Get(':id')
  @ApiOkResponse({ type: ContentResponseDto })
  @ApiNotFoundResponse({ description: 'no such content' })
  get(@Param('id', ParseUUIDPipe) id: string): Promise<ContentResponseDto> {
    return this.contents.get(id);
  }

  @Delete(':id')
  @ApiNoContentResponse({ description: 'removed; its delivery records stay' })
  @ApiNotFoundResponse({ description: 'no such content' })
  @HttpCode(204)
  remove(@Param('id', ParseUUIDPipe) id: string): Promise<void> {
    return this.contents.remove(id);
  }
}
