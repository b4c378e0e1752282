import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminGuard } from '../auth/admin.guard.js';
import { CreateGroupDto, UpdateGroupDto } from './dto/group.dto.js';
import { GroupDetailView, GroupView } from './dto/group.view.js';
import { GroupsService } from './groups.service.js';

@ApiTags('groups')
@ApiBearerAuth('admin')
@ApiUnauthorizedResponse({ description: 'no or a wrong admin token' })
@Controller('api/groups')
@UseGuards(AdminGuard)
export class GroupsController {
  constructor(private readonly groups: GroupsService) {}

  @Post()
  @ApiCreatedResponse({ type: GroupDetailView, description: 'the group with its members resolved' })
  @ApiBadRequestResponse({ description: 'an empty name, or members naming unknown recipients (named)' })
  @ApiConflictResponse({ description: 'a group of that name exists' })
  create(@Body() dto: CreateGroupDto) {
    return this.groups.create(dto);
  }

  @Get()
  @ApiOkResponse({ type: [GroupView], description: 'by name' })
  list() {
    return this.groups.list();
  }

  @Get(':id')
  @ApiOkResponse({ type: GroupDetailView, description: 'the group with its members resolved now' })
  @ApiNotFoundResponse({ description: 'no such group' })
  get(@Param('id', new ParseUUIDPipe()) id: string) {
    return this.groups.get(id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: GroupDetailView })
  @ApiBadRequestResponse({ description: 'addMembers naming unknown recipients (named)' })
  @ApiNotFoundResponse({ description: 'no such group' })
  @ApiConflictResponse({ description: 'another group has the new name' })
  update(@Param('id', new ParseUUIDPipe()) id: string, @Body() dto: UpdateGroupDto) {
    return this.groups.update(id, dto);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'deleted (its recipients stay)' })
  @ApiNotFoundResponse({ description: 'no such group' })
  delete(@Param('id', new ParseUUIDPipe()) id: string): Promise<void> {
    return this.groups.delete(id);
  }
}
