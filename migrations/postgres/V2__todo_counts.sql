-- Each user's number of todos, and of completed ones, kept by a trigger, so
-- that the X-Total-Count of a user's own listing is one row read however
-- many todos they have (a count(*) walks every index entry of the owner).
ALTER TABLE users ADD COLUMN todo_count bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN completed_todo_count bigint NOT NULL DEFAULT 0;

UPDATE users SET
    todo_count = (SELECT count(*) FROM todos WHERE owner_id = users.id),
    completed_todo_count =
        (SELECT count(*) FROM todos WHERE owner_id = users.id AND completed);

CREATE FUNCTION todos_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE users SET todo_count = todo_count - 1,
                         completed_todo_count = completed_todo_count - OLD.completed::int
         WHERE id = OLD.owner_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        UPDATE users SET todo_count = todo_count + 1,
                         completed_todo_count = completed_todo_count + NEW.completed::int
         WHERE id = NEW.owner_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER todos_count AFTER INSERT OR DELETE OR UPDATE OF owner_id, completed ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_count();
