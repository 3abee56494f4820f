-- Each user's number of todos, and of completed ones, kept by triggers, so
-- that the X-Total-Count of a user's own listing is one row read however
-- many todos they have (a count(*) walks every index entry of the owner).
ALTER TABLE users ADD COLUMN todo_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN completed_todo_count INTEGER NOT NULL DEFAULT 0;

UPDATE users SET
    todo_count = (SELECT count(*) FROM todos WHERE owner_id = users.id),
    completed_todo_count =
        (SELECT count(*) FROM todos WHERE owner_id = users.id AND completed);

CREATE TRIGGER todos_count_insert AFTER INSERT ON todos
BEGIN
    UPDATE users SET todo_count = todo_count + 1,
                     completed_todo_count = completed_todo_count + NEW.completed
     WHERE id = NEW.owner_id;
END;

CREATE TRIGGER todos_count_delete AFTER DELETE ON todos
BEGIN
    UPDATE users SET todo_count = todo_count - 1,
                     completed_todo_count = completed_todo_count - OLD.completed
     WHERE id = OLD.owner_id;
END;

CREATE TRIGGER todos_count_update AFTER UPDATE OF owner_id, completed ON todos
BEGIN
    UPDATE users SET todo_count = todo_count - 1,
                     completed_todo_count = completed_todo_count - OLD.completed
     WHERE id = OLD.owner_id;
    UPDATE users SET todo_count = todo_count + 1,
                     completed_todo_count = completed_todo_count + NEW.completed
     WHERE id = NEW.owner_id;
END;
